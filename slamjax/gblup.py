"""Single-trait GBLUP with REML variance components (numpy/scipy only, no JAX).

The baseline a multi-trait model is compared with: each trait (column of ``Y``) is fitted
separately, on its own observed rows, by

    y = X b + Z u + e,    u ~ N(0, sigma2_g K),    e ~ N(0, sigma2_e I),

with ``Z`` the incidence of the observed records on the levels of ``K`` (an id may have several
records). Write ``sigma2 = sigma2_g + sigma2_e``, ``h2 = sigma2_g / sigma2`` and
``V = sigma2 H(h2)``, ``H(h2) = h2 Z K Z' + (1 - h2) I``. The restricted (REML) log-likelihood is

    l_R = -1/2 [ (n - p) log(2 pi) + log|V| + log|X' V^-1 X| + y' P y ],
    P   = V^-1 - V^-1 X (X' V^-1 X)^-1 X' V^-1,

with ``n`` observations and ``p`` columns of ``X`` (the constant ``+1/2 log|X'X|`` is not
included). Maximising over ``sigma2`` for fixed ``h2`` gives ``sigma2_hat = y' P_H y / (n - p)``
(``P_H`` as ``P`` with ``H`` in place of ``V``) and the profile

    l_R(h2) = -1/2 [ (n - p) (log(2 pi sigma2_hat) + 1) + log|H| + log|X' H^-1 X| ],

evaluated exactly through one eigendecomposition ``Z K Z' = U diag(lambda) U'`` (EMMA), so
``H = U diag(h2 lambda + 1 - h2) U'``. ``h2`` is maximised over [0, 1) by a grid of 100 points
and a bounded Brent refinement next to the best one; h2 = 0 is reported when the maximum is on
that boundary. Then ``b_hat`` is the GLS estimate and, for every level of ``K``,

    u_hat = sigma2_g K Z' V^-1 (y - X b_hat)  =  h2 K Z' H^-1 (y - X b_hat),

the BLUP (equal to the mixed-model-equation solution); levels without records are predicted
through their relationships in ``K``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.optimize

from ._errors import SlamjaxInputError
from .formula import check_relationship

__all__ = ["GBLUPResult", "gblup"]

INTERCEPT_NAME = "(Intercept)"
_RANK_RTOL = 1e-10  # singular values of column-normalised X below this * s_max are zero
_H2_GRID = np.linspace(0.0, 1.0, 101)[:-1]  # 0, 0.01, ..., 0.99
_H2_MAX = 1.0 - 1e-8  # upper end of the refinement when the best grid point is the last one


@dataclasses.dataclass(frozen=True)
class GBLUPResult:
    """Per-trait REML estimates and BLUPs of :func:`gblup`.

    Attributes:
      h2, sigma2_g, sigma2_e: Series by trait; h2 = sigma2_g / (sigma2_g + sigma2_e).
      fixed: DataFrame, covariates (columns of X) x traits, GLS estimates b_hat.
      genetic_values: DataFrame, levels of K (in K's order) x traits, BLUPs u_hat.
      log_likelihood: Series by trait, the restricted log-likelihood at the estimates.
    """

    h2: pd.Series
    sigma2_g: pd.Series
    sigma2_e: pd.Series
    fixed: pd.DataFrame
    genetic_values: pd.DataFrame
    log_likelihood: pd.Series

    def predict(self, levels=None) -> pd.DataFrame:
        """Genetic values (BLUPs, without fixed effects) of ``levels`` (default all levels of K)."""
        if levels is None:
            return self.genetic_values
        levels = pd.Index(levels)
        unknown = levels[~levels.isin(self.genetic_values.index)]
        if len(unknown):
            raise SlamjaxInputError(
                f"predict(levels): {_fmt(unknown)} not levels of K; pass levels from K's index"
            )
        return self.genetic_values.loc[levels]


def gblup(Y, K, X=None) -> GBLUPResult:
    """Fit ``y = X b + Z u + e``, ``u ~ N(0, sigma2_g K)``, ``e ~ N(0, sigma2_e I)`` per trait by REML.

    Args:
      Y: DataFrame, rows = records (index = ids, all in K's index, repeats allowed), columns =
        traits, NaN = missing; a Series is one trait. Each trait uses its own observed rows.
      K: DataFrame, square, symmetric, positive semi-definite, index == columns = levels.
      X: optional DataFrame of fixed covariates with Y's index, no NaN; used as given (include a
        constant column yourself if wanted). Default: an intercept only.

    Returns:
      A :class:`GBLUPResult`. The restricted log-likelihood maximised over h2 in [0, 1) is
      ``-1/2 [(n - p) log(2 pi) + log|V| + log|X'V^-1X| + y'Py]`` (see the module docstring).

    Raises:
      SlamjaxInputError: for bad input, before any fitting.
    """
    Yv, traits, Kv, levels, Xv, covariates, rows, observed = _validate(Y, K, X)
    out = {k: {} for k in ("h2", "sigma2_g", "sigma2_e", "ll")}
    fixed = np.empty((len(covariates), len(traits)))
    gv = np.empty((len(levels), len(traits)))
    eigen = {}  # the last eigendecomposition of Z K Z', reused by the next trait with the same rows
    for j, trait in enumerate(traits):
        obs = observed[:, j]
        key = obs.tobytes()
        if key not in eigen:
            lam, U = np.linalg.eigh(Kv[np.ix_(rows[obs], rows[obs])])
            eigen = {key: (np.clip(lam, 0.0, None), U)}  # clip rounding: Z K Z' is PSD
        fit = _fit_one(Yv[obs, j], Xv[obs], Kv, rows[obs], *eigen[key])
        for name, values in out.items():
            values[trait] = fit[name]
        fixed[:, j], gv[:, j] = fit["b"], fit["u"]
    series = {k: pd.Series(v, index=traits, dtype=float) for k, v in out.items()}
    return GBLUPResult(
        h2=series["h2"],
        sigma2_g=series["sigma2_g"],
        sigma2_e=series["sigma2_e"],
        fixed=pd.DataFrame(fixed, index=covariates, columns=traits),
        genetic_values=pd.DataFrame(gv, index=levels, columns=traits),
        log_likelihood=series["ll"],
    )


# --------------------------------------------------------------------------- fitting


def _fit_one(y, X, K, rows, lam, U) -> dict:
    """REML fit of one trait: y (n,), X (n, p), K (r, r), rows (n,) = level of each record,
    Z K Z' = K[rows, rows] = U diag(lam) U'."""
    n, p = X.shape
    yt, Xt = U.T @ y, U.T @ X

    def parts(h2):
        d = h2 * lam + (1.0 - h2)  # eigenvalues of H
        XtW = Xt.T / d
        chol = scipy.linalg.cho_factor(XtW @ Xt)
        b = scipy.linalg.cho_solve(chol, XtW @ yt)
        resid = yt - Xt @ b  # U'(y - X b)
        sigma2 = float(resid @ (resid / d)) / (n - p)  # y' P_H y / (n - p)
        logdet_xhx = 2.0 * np.sum(np.log(np.diag(chol[0])))
        ll = -0.5 * ((n - p) * (np.log(2 * np.pi * sigma2) + 1.0) + np.sum(np.log(d)) + logdet_xhx)
        return ll, sigma2, b, resid / d

    def neg_ll(h2):
        return -parts(h2)[0]

    grid_ll = np.array([-neg_ll(h) for h in _H2_GRID])
    i = int(np.argmax(grid_ll))
    hi = _H2_GRID[i + 1] if i + 1 < len(_H2_GRID) else _H2_MAX
    lo = _H2_GRID[max(i - 1, 0)]
    opt = scipy.optimize.minimize_scalar(neg_ll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
    # Brent never evaluates the bounds: keep the best of the grid point, the refinement and h2 = 0.
    candidates = [(grid_ll[i], _H2_GRID[i]), (-opt.fun, float(opt.x)), (grid_ll[0], 0.0)]
    h2 = max(candidates, key=lambda c: (c[0], -c[1]))[1]
    ll, sigma2, b, h_inv_resid_t = parts(h2)
    # u_hat = h2 K Z' H^-1 (y - X b);  H^-1 (y - X b) = U diag(1/d) U'(y - X b)
    u = h2 * (K[:, rows] @ (U @ h_inv_resid_t))
    return {"h2": h2, "sigma2_g": h2 * sigma2, "sigma2_e": (1.0 - h2) * sigma2, "ll": ll, "b": b, "u": u}


# --------------------------------------------------------------------------- validation


def _fmt(names, limit: int = 5) -> str:
    names = [repr(x) for x in list(names)[:limit + 1]]
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def _numeric(frame: pd.DataFrame, arg: str) -> np.ndarray:
    for col in frame.columns:
        dtype = frame[col].dtype
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)) or pd.api.types.is_complex_dtype(dtype):
            raise SlamjaxInputError(f"{arg}: column {col!r} has non-numeric dtype {dtype}; convert it to numbers")
    return frame.to_numpy(dtype=np.float64, na_value=np.nan)


def _validate(Y, K, X):
    # Y
    if isinstance(Y, pd.Series):
        Y = Y.to_frame(name="y" if Y.name is None else Y.name)
    if not isinstance(Y, pd.DataFrame):
        raise SlamjaxInputError(f"Y: must be a pandas DataFrame (or Series) indexed by ids, got {type(Y).__name__}")
    if Y.shape[1] == 0:
        raise SlamjaxInputError("Y: has no columns; pass one column per trait")
    if Y.columns.has_duplicates:
        raise SlamjaxInputError(f"Y: duplicated trait names {_fmt(Y.columns[Y.columns.duplicated()].unique())}; rename them")
    Yv = _numeric(Y, "Y")
    if np.isinf(Yv).any():
        raise SlamjaxInputError("Y: contains infinite values; replace them with NaN (missing) or finite numbers")
    # K
    if not isinstance(K, pd.DataFrame):
        raise SlamjaxInputError(f"K: must be a pandas DataFrame with index == columns = levels, got {type(K).__name__}")
    Kv, _ = check_relationship(K, "K", arg="K")  # the same checks as relmat: square, finite, symmetric, PSD
    missing = Y.index[~Y.index.isin(K.index)]
    if len(missing):
        raise SlamjaxInputError(
            f"Y: ids {_fmt(missing.unique())} are not levels of K; add them to K or drop those rows of Y"
        )
    rows = K.index.get_indexer(Y.index)
    # X
    if X is None:
        Xv, covariates = np.ones((len(Y), 1)), pd.Index([INTERCEPT_NAME])
    else:
        if isinstance(X, pd.Series):
            X = X.to_frame()
        if not isinstance(X, pd.DataFrame):
            raise SlamjaxInputError(f"X: must be a pandas DataFrame with Y's index, got {type(X).__name__}")
        if not X.index.equals(Y.index):
            if X.index.is_unique and Y.index.is_unique and X.index.sort_values().equals(Y.index.sort_values()):
                X = X.loc[Y.index]
            else:
                raise SlamjaxInputError("X: index is not aligned with Y's index; give X the same rows as Y (e.g. X.loc[Y.index])")
        if X.shape[1] == 0:
            raise SlamjaxInputError("X: has no columns; pass X=None for an intercept only")
        if X.columns.has_duplicates:
            raise SlamjaxInputError(f"X: duplicated covariate names {_fmt(X.columns[X.columns.duplicated()].unique())}; rename them")
        Xv, covariates = _numeric(X, "X"), X.columns
        if not np.isfinite(Xv).all():
            raise SlamjaxInputError("X: contains NaN or infinite values; impute them or drop those rows from Y and X")
    # per trait
    observed = ~np.isnan(Yv)
    p = Xv.shape[1]
    for j, trait in enumerate(Y.columns):
        obs = observed[:, j]
        n = int(obs.sum())
        if n < 3 or n <= p:
            raise SlamjaxInputError(
                f"Y: trait {trait!r} has {n} observations, needs at least {max(3, p + 1)} (3, and more than "
                f"the {p} columns of X); drop the trait or add data"
            )
        Xo = Xv[obs]
        norms = np.linalg.norm(Xo, axis=0)
        s = np.linalg.svd(Xo / np.where(norms > 0, norms, 1.0), compute_uv=False)
        if (norms == 0).any() or s[-1] <= _RANK_RTOL * s[0]:
            raise SlamjaxInputError(
                f"X: rank-deficient on the {n} observed rows of trait {trait!r}; drop redundant or constant "
                "covariates (e.g. a level with no record of this trait), or fit that trait with its own X"
            )
        y = Yv[obs, j]
        resid = y - Xo @ np.linalg.lstsq(Xo, y, rcond=None)[0]
        if resid @ resid <= 1e-20 * max(y @ y, np.finfo(float).tiny):
            raise SlamjaxInputError(
                f"Y: trait {trait!r} is fitted exactly by X (e.g. constant); nothing is left to partition, drop the trait"
            )
    return Yv, Y.columns, Kv, K.index, Xv, pd.Index(covariates), rows, observed
