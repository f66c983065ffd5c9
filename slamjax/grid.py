"""The discrete grid of variance proportions h2 and its prior weights.

For R random effects the grid is every vector h2 = i / d with integer i_m >= 0 and
sum_m i_m <= d - 1 (so sum h2 < 1 and the residual always has positive variance), where
d = ``h2_divisions``. It has C(d - 1 + R, R) points; with R = 1 these are 0, 1/d, ..., (d-1)/d.
"""

from __future__ import annotations

import itertools
from math import comb

import numpy as np

from ._errors import SlamjaxInputError

__all__ = ["h2_grid", "h2_log_prior", "h2_weights"]


def h2_grid(n_random: int, divisions: int) -> np.ndarray:
    """All grid points, shape (G, n_random), G = C(divisions - 1 + n_random, n_random).

    Rows are in lexicographic order of the integer numerators; row 0 is h2 = 0.
    """
    if isinstance(n_random, bool) or not isinstance(n_random, (int, np.integer)) or n_random < 1:
        raise SlamjaxInputError(f"n_random: must be an integer >= 1, got {n_random!r}")
    if isinstance(divisions, bool) or not isinstance(divisions, (int, np.integer)) or divisions < 2:
        raise SlamjaxInputError(
            f"h2_divisions: must be an integer >= 2, got {divisions!r}; 20 is a good default"
        )
    points = [
        numerators
        for numerators in itertools.product(range(divisions), repeat=n_random)
        if sum(numerators) <= divisions - 1
    ]
    grid = np.asarray(points, dtype=np.float64) / divisions
    assert grid.shape[0] == comb(divisions - 1 + n_random, n_random)
    return grid


def h2_weights(grid: np.ndarray, prior=None) -> np.ndarray:
    """The prior weight of every grid point as given, not normalised: ``prior`` (see
    ``h2_log_prior``) evaluated over ``grid``. These weights, passed back as an array, give the
    same log prior bit for bit (a run store keeps them in place of functions)."""
    n_points = grid.shape[0]
    if isinstance(prior, (list, tuple)) and prior and all(callable(f) for f in prior):
        if len(prior) != grid.shape[1]:
            raise SlamjaxInputError(
                f"h2 prior: {len(prior)} marginal functions for {grid.shape[1]} random effects; give one per effect"
            )
        weights = np.prod([np.asarray(f(grid[:, m]), dtype=np.float64) for m, f in enumerate(prior)], axis=0)
    elif prior is None:
        weights = np.ones(n_points)
    elif callable(prior):
        weights = np.asarray(prior(grid), dtype=np.float64)
    else:
        weights = np.asarray(prior, dtype=np.float64)
    if weights.shape != (n_points,):
        raise SlamjaxInputError(
            f"h2 prior: needs one weight per grid point, shape ({n_points},), got {weights.shape}; "
            "inspect the grid with sj.h2_grid(n_random, h2_divisions)"
        )
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise SlamjaxInputError("h2 prior: weights must be finite, non-negative and not all zero")
    return weights


def h2_log_prior(grid: np.ndarray, prior=None) -> np.ndarray:
    """Log prior weight of every grid point, normalised so the weights sum to one.

    ``prior`` is None (uniform over grid points), an array of non-negative weights (one per
    grid point), a function of the grid (G, R) returning such weights, or a list of R functions,
    one marginal weight per random effect, multiplied together (independent marginals,
    renormalised on the simplex). For example, with R = 2 (animal, cage):

        grid = sj.h2_grid(2, 10)                                 # inspect the points
        sj.Priors(h2=lambda g: np.exp(-5 * g[:, 1]))             # joint: cage effects small
        sj.Priors(h2=[scipy.stats.beta(2, 2).pdf, lambda h: 1 - h])  # independent marginals
    """
    weights = h2_weights(grid, prior)
    with np.errstate(divide="ignore"):
        return np.log(weights / weights.sum())
