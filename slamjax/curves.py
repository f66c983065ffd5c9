"""Curves from a run of a B-spline random regression (``sj.obs.BSplineRegression``): the model's
latent traits are spline coefficients eta_i, and a function of them at times t is B(t) eta_i with
B(t) the basis (``observation.basis(times)``, T x p). ``Run.predict_curves``,
``Run.genetic_covariance_curve`` and ``Run.h2_curve`` call these.

    predicted curve of individual i:   B(t) (x_i' B + u_i)      per recorded draw, (chain, draw) pooled
    genetic covariance over time:      G(t, t') = B(t) G B(t')'  (posterior mean of G, coefficient level)
    heritability over time:            h2(t) = [B G B']_tt / [B P B']_tt,   P = sum_m G_m + R

All values are in the data's units (the link's values and times).
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from jaxtyping import Float

from ._errors import SlamjaxInputError
from .observation.bspline import BSplineRegression

__all__ = ["predict_curves", "genetic_covariance_curve", "h2_curve"]

_CHUNK_VALUES = 2**24  # values of (draws x individuals x times) computed at once by predict_curves


def _link(run, what: str) -> BSplineRegression:
    observation = run.model.observation
    if not isinstance(observation, BSplineRegression):
        raise SlamjaxInputError(
            f"{what}: needs a model observed through sj.obs.BSplineRegression (spline coefficients as latent "
            f"traits); this run's model observes its traits through {type(observation).__name__}"
        )
    return observation


def _effect(run, effect, what: str) -> tuple[str, int]:
    names = run.model.effect_names
    effect = names[0] if effect is None else effect
    if effect not in names:
        raise SlamjaxInputError(f"{what}: unknown effect {effect!r}; the random effects are {names}")
    return effect, names.index(effect)


def _times(times) -> np.ndarray:
    try:
        values = np.asarray(times, dtype=float)
    except (TypeError, ValueError) as error:
        raise SlamjaxInputError(f"times: must be numbers: {error}") from None
    if values.ndim > 1 or values.size == 0:
        raise SlamjaxInputError(f"times: must be a non-empty 1-D sequence of times, got shape {values.shape}")
    return values.reshape(-1)


def _time_index(times: np.ndarray) -> pd.Index:
    return pd.Index(times, name="time")


def predict_curves(run, times, interval: float = 0.9, effect: str | None = None) -> pd.DataFrame:
    """Posterior of the genetic value curve of every individual, and of every level of K without data.

    For each recorded draw, the curve of individual i is B(t) (x_i' B + z_i' U): its fixed effects
    (x_i, the row of the model's X: the intercept and any covariates of i) plus its genetic value
    on the levels of ``effect``'s K (default: the first random effect) — the individual's expected
    curve without its residual (non-genetic) deviation. A level of K without data (no individual
    has it) gets B(t) (intercept + u_level), its genetic value predicted through its
    relationships, as ``run.predict("genetic", fixed=True)``.

    Returns a tidy DataFrame with columns individual, time, mean (over all chains and draws), lower
    and upper (the equal-tailed ``interval``: 0.9 gives the 5 % and 95 % quantiles): individuals
    first, in Y's order (``model.Y_rows``: the order of the link's individuals), then the levels
    without data, each labelled by its level name, in K's order; times in the order given.

    Needs the genetic values kept per draw: ``sj.sample(..., record_genetic_values=True)``.
    """
    link = _link(run, "predict_curves")
    times = _times(times)
    basis = link.basis(times)  # (T, p); refuses times outside the fitted range
    if isinstance(interval, bool) or not isinstance(interval, numbers.Real) or not 0.0 < float(interval) < 1.0:
        raise SlamjaxInputError(f"interval: must be a probability in (0, 1), got {interval!r}")
    effect, which = _effect(run, effect, "predict_curves")
    if "U" not in run.draws:
        raise SlamjaxInputError(
            "predict_curves: needs the genetic values of every draw; sample with "
            "sj.sample(..., record_genetic_values=True)"
        )
    m = run.model
    if not run.draws["B"].size:
        raise SlamjaxInputError("predict_curves: the run has no draws yet; resume() it to record some")
    level_names = list(m.level_names) if len(m.effect_names) == 1 else list(m.effect_levels[effect])
    offset = int(np.sum(m.random_effect.sizes[:which]))
    U = run.draws["U"][:, :, offset : offset + len(level_names)]  # (chain, draw, levels, p)
    B = run.draws["B"]  # (chain, draw, fixed, p), the intercept on the data's scale
    X = np.asarray(m.inputs.X)[m.Y_rows]  # individuals in Y's order
    Z = np.asarray(m.Zs[which])[m.Y_rows]
    without_data = np.flatnonzero(~np.any(np.asarray(m.Zs[which]) != 0, axis=0))
    samples = B.shape[0] * B.shape[1]
    coefficients = np.concatenate([
        np.einsum("nb,cdbp->cdnp", X, B) + np.einsum("nr,cdrp->cdnp", Z, U),
        B[:, :, :1, :] + U[:, :, without_data],
    ], axis=2).reshape(samples, -1, B.shape[-1])  # (samples, curves, p)
    labels = [m.individual_names[i] for i in m.Y_rows] + [level_names[j] for j in without_data]

    n_curves, n_times = coefficients.shape[1], basis.shape[0]
    chunk = max(1, _CHUNK_VALUES // max(1, samples * n_times))
    probabilities = [(1.0 - interval) / 2.0, (1.0 + interval) / 2.0]
    mean, lower, upper = (np.empty((n_curves, n_times)) for _ in range(3))
    for start in range(0, n_curves, chunk):
        curves = coefficients[:, start : start + chunk] @ basis.T  # (samples, chunk, T)
        mean[start : start + chunk] = curves.mean(axis=0)
        lower[start : start + chunk], upper[start : start + chunk] = np.quantile(curves, probabilities, axis=0)
    return pd.DataFrame({
        "individual": np.repeat(np.asarray(labels, dtype=object), n_times),
        "time": np.tile(times, n_curves),
        "mean": mean.ravel(),
        "lower": lower.ravel(),
        "upper": upper.ravel(),
    })


def _covariance_curve(basis: Float[np.ndarray, "T p"], C: Float[np.ndarray, "... p p"]) -> np.ndarray:
    return np.einsum("tp,...pq,sq->...ts", basis, C, basis)


def _variance_curve(basis: Float[np.ndarray, "T p"], C: Float[np.ndarray, "... p p"]) -> np.ndarray:
    return np.einsum("tp,...pq,tq->...t", basis, C, basis)


def genetic_covariance_curve(run, times, effect: str | None = None) -> pd.DataFrame:
    """G(t, t') = B(t) G B(t')' (times x times DataFrame) from the posterior mean of the
    coefficient-level genetic covariance G of ``effect`` (default: the first random effect)."""
    link = _link(run, "genetic_covariance_curve")
    times = _times(times)
    basis = link.basis(times)
    effect, _ = _effect(run, effect, "genetic_covariance_curve")
    G = run.posterior_mean("G")
    G = (G[effect] if isinstance(G, dict) else G).to_numpy()
    index = _time_index(times)
    return pd.DataFrame(_covariance_curve(basis, G), index=index, columns=index.copy())


def h2_curve(run, times, effect: str | None = None) -> pd.Series:
    """h2(t) = [B G B']_tt / [B P B']_tt, the share of the variance of the curve at time t due to
    ``effect`` (default: the first random effect), P = sum_m G_m + R the coefficients' total
    covariance (without the link's residual variance sigma2, a measurement error).

    When G and R were recorded per draw (``record_covariances``, the default for p <= 100): the
    posterior mean of the per-draw ratio. Otherwise the ratio of the posterior means of G and P.
    """
    link = _link(run, "h2_curve")
    times = _times(times)
    basis = link.basis(times)
    effect, which = _effect(run, effect, "h2_curve")
    draws = run.draws
    if "G" in draws and "R" in draws and draws["G"].size:
        G = draws["G"]  # (chain, draw, [effect,] p, p)
        several = G.ndim == 5
        P = (G.sum(axis=2) if several else G) + draws["R"]
        G = G[:, :, which] if several else G
        h2 = (_variance_curve(basis, G) / _variance_curve(basis, P)).mean(axis=(0, 1))
    else:
        G = run.posterior_mean("G")
        G = (G[effect] if isinstance(G, dict) else G).to_numpy()
        h2 = _variance_curve(basis, G) / _variance_curve(basis, run.posterior_mean("P").to_numpy())
    return pd.Series(h2, index=_time_index(times), name="h2")
