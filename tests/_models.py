"""Small models and original-space (unrotated) closed forms shared by the statistical tests."""

from __future__ import annotations

import jax
import numpy as np

import slamjax as sj
from slamjax.state import sample_prior_state


def random_design(n: int, r: int, seed: int):
    """An incidence matrix Z (n x r; every individual has one level, every level < n has data)
    and a positive-definite K (r x r)."""
    rng = np.random.default_rng(seed)
    if r == n:
        Z = np.eye(n)
    else:
        levels = np.concatenate([np.arange(min(n, r)), rng.integers(0, min(n, r), max(0, n - r))])
        Z = np.zeros((n, r))
        Z[np.arange(n), rng.permutation(levels)] = 1.0
    M = rng.normal(size=(r, 2 * r))
    K = M @ M.T / (2 * r) + 0.1 * np.eye(r)
    return Z, K


def tiny_model(
    n=30, p=4, k=2, r=None, seed=0, intercept_precision=0.5, fraction_missing=0.0, h2_divisions=5, priors=None,
    backend="eigen", missing="impute", max_missing_groups=10, h2_draw="collapsed",
    rotate_factors=True, shear_factors=True, factor_h2_draw="auto", exchange_factors="auto",  # step 0e in every tiny eigen model
    rescale_factors="auto", swap_factors="auto",
) -> sj.Model:
    """A model with an intercept and one covariate for the traits, one covariate for the factors."""
    rng = np.random.default_rng(seed)
    r = n if r is None else r
    Z, K = random_design(n, r, seed)
    Y = rng.normal(size=(n, p))
    if fraction_missing:
        Y[rng.random((n, p)) < fraction_missing] = np.nan
        Y[0] = rng.normal(size=p)  # every trait keeps observations
        Y[1] = rng.normal(size=p)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    X_F = rng.normal(size=(n, 1))
    if priors is None:
        priors = sj.Priors(intercept_precision=intercept_precision)
    return sj.Model(
        Y=Y, X=X, X_F=X_F, Z=Z, K=K, n_factors=k, h2_divisions=h2_divisions, priors=priors, scale_Y=False,
        backend=backend, missing=missing, max_missing_groups=max_missing_groups, h2_draw=h2_draw,
        rotate_factors=rotate_factors, shear_factors=shear_factors, factor_h2_draw=factor_h2_draw,
        exchange_factors=exchange_factors, rescale_factors=rescale_factors, swap_factors=swap_factors,
    )


def prior_state(model: sj.Model, seed: int = 1):
    return sample_prior_state(jax.random.key(seed), model.data)


def covariance(model: sj.Model, h2: float) -> np.ndarray:
    """V = h2 Z K Z' + (1 - h2) I in the original coordinates."""
    Z, K = model.inputs.Z, model.inputs.K
    return h2 * Z @ K @ Z.T + (1.0 - h2) * np.eye(Z.shape[0])


def Q(model: sj.Model) -> np.ndarray:
    """The rotation into the backend's coordinates (identity for the cholesky backend; Q for eigen and woodbury)."""
    if model.backend == "cholesky":
        return np.eye(model.shapes["n"])
    return np.asarray(model.random_effect.Q)


def three_effect_model(
    n=30, p=4, k=2, seed=0, h2_divisions=4, backend="woodbury", fraction_missing=0.0, cages=6, litters=3,
    h2_draw="collapsed", intercept_precision=0.5, ancestors=0, animal_last=False,
) -> sj.Model:
    """An animal effect with a relationship matrix (r = n + ``ancestors`` levels) plus iid cage and
    litter effects, an intercept and one covariate: the design the woodbury backend is for."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    ids = [f"i{i}" for i in range(n)]
    levels = ids + [f"a{i}" for i in range(ancestors)]
    _, K = random_design(n + ancestors, n + ancestors, seed)
    data = pd.DataFrame(
        {"id": ids, "cage": [f"c{i % cages}" for i in range(n)], "litter": [f"l{(i // 2) % litters}" for i in range(n)],
         "x": rng.normal(size=n)},
        index=ids,
    )
    Y = rng.normal(size=(n, p))
    if fraction_missing:
        Y[rng.random((n, p)) < fraction_missing] = np.nan
        Y[0] = rng.normal(size=p)
        Y[1] = rng.normal(size=p)
    return sj.Model(
        Y=pd.DataFrame(Y, index=ids, columns=[f"y{j}" for j in range(p)]), data=data,
        formula="~ x + (1|cage) + (1|litter) + (1|id)" if animal_last else "~ x + (1|id) + (1|cage) + (1|litter)",
        relmat={"id": pd.DataFrame(K, index=levels, columns=levels)},
        n_factors=k, h2_divisions=h2_divisions, scale_Y=False, backend=backend, missing="impute",
        h2_draw=h2_draw, priors=sj.Priors(intercept_precision=intercept_precision),
    )


def collapsed_h2_log_density(model: sj.Model, W: np.ndarray, y: np.ndarray, D: np.ndarray, a: float, b: float,
                             h2: float) -> float:
    """log p(y | h2) marginal over beta, tau and U, up to a constant in h2, from explicit n x n matrices
    (original coordinates).

    With beta_1 (non-flat part, prior precision D > 0) ~ N(0, (tau D_1)^-1),
    y | beta_0, tau ~ N(W_0 beta_0, Sigma / tau), Sigma = V + W_1 D_1^-1 W_1'; a flat beta_0 and
    tau ~ Gamma(a, b) integrate to -1/2 log|Sigma| - 1/2 log|W_0' Sigma^-1 W_0| - (a + (n - n_0) / 2)
    log(b + Q / 2), Q = y' Sigma^-1 y - y' Sigma^-1 W_0 (W_0' Sigma^-1 W_0)^-1 W_0' Sigma^-1 y.
    """
    flat = D == 0
    W0, W1 = W[:, flat], W[:, ~flat]
    Sigma = covariance(model, h2) + W1 @ np.diag(1.0 / D[~flat]) @ W1.T
    Sigma_inv = np.linalg.inv(Sigma)
    quadratic = y @ Sigma_inv @ y
    value = -0.5 * np.linalg.slogdet(Sigma)[1]
    if flat.any():
        A = W0.T @ Sigma_inv @ W0
        r = W0.T @ Sigma_inv @ y
        quadratic -= r @ np.linalg.solve(A, r)
        value -= 0.5 * np.linalg.slogdet(A)[1]
    return value - (a + 0.5 * (y.shape[0] - flat.sum())) * np.log(b + 0.5 * quadratic)
