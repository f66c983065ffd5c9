"""Input validation for the slamjax model, run before any JAX code.

One entry point, :func:`validate_inputs`, turns user inputs (numpy arrays or
pandas DataFrames) into a :class:`ValidatedData` of float64 numpy arrays with
names, or raises :class:`SlamjaxInputError` with a message that names the
argument, the problem and a fix.

This module imports only numpy, scipy and pandas (no JAX).
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg

from ._errors import SlamjaxInputError

__all__ = ["ValidatedData", "validate_inputs", "INTERCEPT_NAME"]

INTERCEPT_NAME = "(Intercept)"

# Relative tolerances.
_SYM_RTOL = 1e-8  # |K - K.T| <= _SYM_RTOL * max|K|
_PSD_RTOL = 1e-8  # min eig >= -_PSD_RTOL * max|eig|
_RANK_RTOL = 1e-10  # singular values of column-normalised design below this * s_max are zero
_NULL_ATOL = 1e-6  # entries of a unit null vector above this mark a column as involved
_MAX_LISTED = 5  # how many names to list in a message


@dataclasses.dataclass(frozen=True)
class ValidatedData:
    """Validated, named, float64 model inputs.

    Attributes:
      Y: (n, p) responses, NaN = missing.
      X: (n, b) fixed-effect design; column 0 is the intercept (all ones).
      X_F: (n, b_F) factor fixed-effect design, possibly 0 columns; no intercept.
      Z: (n, r) random-effect incidence/design matrix.
      K: (r, r) symmetric PSD relationship matrix, rows/cols = levels of Z.
      individual_names: n names (rows of Y, X, X_F, Z).
      trait_names: p names (columns of Y).
      fixed_names: b names (columns of X); first is "(Intercept)".
      factor_fixed_names: b_F names (columns of X_F).
      level_names: r names (columns of Z = rows of K).
    """

    Y: np.ndarray
    X: np.ndarray
    X_F: np.ndarray
    Z: np.ndarray
    K: np.ndarray
    individual_names: list[str]
    trait_names: list[str]
    fixed_names: list[str]
    factor_fixed_names: list[str]
    level_names: list[str]

    @property
    def n(self) -> int:
        return self.Y.shape[0]

    @property
    def p(self) -> int:
        return self.Y.shape[1]

    @property
    def b(self) -> int:
        return self.X.shape[1]

    @property
    def b_F(self) -> int:
        return self.X_F.shape[1]

    @property
    def r(self) -> int:
        return self.Z.shape[1]


# --------------------------------------------------------------------------- helpers


def _fmt_names(names, limit: int = _MAX_LISTED) -> str:
    names = list(names)
    shown = ", ".join(repr(str(x)) for x in names[:limit])
    if len(names) > limit:
        shown += f", ... ({len(names)} in all)"
    return shown


def _duplicates(names: list[str]) -> list[str]:
    seen: set[str] = set()
    dups: list[str] = []
    for x in names:
        if x in seen and x not in dups:
            dups.append(x)
        seen.add(x)
    return dups


def _check_unique(names: list[str], arg: str, what: str, fix: str) -> None:
    dups = _duplicates(names)
    if dups:
        raise SlamjaxInputError(f"{arg}: duplicated {what} {_fmt_names(dups)}; {fix}")


def _column_to_float(values: Any, arg: str, col_name: str) -> np.ndarray:
    """Convert one column to float64, refusing non-numeric content (naming the column)."""
    if isinstance(values, pd.Series):
        dtype = values.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            raise SlamjaxInputError(
                f"{arg}: column {col_name!r} is categorical, not numeric; "
                f"encode it as numbers (e.g. pd.get_dummies(..., drop_first=True, dtype=float))"
            )
        if pd.api.types.is_bool_dtype(dtype) or (
            pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype)
        ):
            return values.to_numpy(dtype=np.float64, na_value=np.nan)
        if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
            series = values
        else:
            raise SlamjaxInputError(
                f"{arg}: column {col_name!r} has non-numeric dtype {dtype}; "
                f"pass numeric (int, float or bool) values"
            )
    else:
        arr = np.asarray(values)
        if arr.dtype.kind in "biuf":
            return arr.astype(np.float64)
        if arr.dtype.kind not in "OUS":
            raise SlamjaxInputError(
                f"{arg}: column {col_name!r} has non-numeric dtype {arr.dtype}; "
                f"pass numeric (int, float or bool) values"
            )
        series = pd.Series(arr, dtype=object)
    # object / string column: accept only if every non-missing entry is a number
    def _is_missing(v: Any) -> bool:
        return v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))

    def _is_number(v: Any) -> bool:
        return isinstance(v, (numbers.Real, np.bool_)) and not isinstance(v, str)

    bad = [v for v in series.tolist() if not (_is_missing(v) or _is_number(v))]
    if bad:
        raise SlamjaxInputError(
            f"{arg}: column {col_name!r} is not numeric (e.g. value {bad[0]!r}); "
            f"convert it to numbers (e.g. pd.to_numeric) or encode it with indicator columns"
        )
    return np.array(
        [np.nan if _is_missing(v) else float(v) for v in series.tolist()],
        dtype=np.float64,
    )


def _to_float_matrix(
    obj: Any, arg: str, default_col_prefix: str
) -> tuple[np.ndarray, list[str] | None, list[str]]:
    """Return (matrix float64 (n, m), row names or None if not a DataFrame, column names)."""
    if isinstance(obj, pd.Series):
        obj = obj.to_frame()
    if isinstance(obj, pd.DataFrame):
        if isinstance(obj.columns, pd.MultiIndex) or isinstance(obj.index, pd.MultiIndex):
            raise SlamjaxInputError(
                f"{arg}: MultiIndex rows/columns are not supported; flatten them to single names"
            )
        col_names = [str(c) for c in obj.columns]
        row_names = [str(i) for i in obj.index]
        n, m = obj.shape
        mat = np.empty((n, m), dtype=np.float64)
        for j in range(m):
            mat[:, j] = _column_to_float(obj.iloc[:, j], arg, col_names[j])
        return mat, row_names, col_names
    if isinstance(obj, (pd.Index,)):
        obj = obj.to_numpy()
    try:
        arr = np.asarray(obj)
    except Exception as exc:  # ragged lists etc.
        raise SlamjaxInputError(
            f"{arg}: could not convert to an array ({exc}); pass a 2-D numpy array or a pandas DataFrame"
        ) from None
    if arr.ndim != 2:
        hint = " (for a single column use a.reshape(-1, 1))" if arr.ndim == 1 else ""
        raise SlamjaxInputError(
            f"{arg}: must be 2-D but has shape {arr.shape}; pass a 2-D array or a DataFrame{hint}"
        )
    n, m = arr.shape
    col_names = [f"{default_col_prefix}{j}" for j in range(m)]
    if arr.dtype.kind in "biuf":
        return np.array(arr, dtype=np.float64, order="C", copy=True), None, col_names
    if arr.dtype.kind == "c":
        raise SlamjaxInputError(
            f"{arg}: complex values are not supported; pass real numbers"
        )
    mat = np.empty((n, m), dtype=np.float64)
    for j in range(m):
        mat[:, j] = _column_to_float(arr[:, j], arg, col_names[j])
    return mat, None, col_names


def _check_finite(mat: np.ndarray, arg: str, row_names: list[str], col_names: list[str],
                  allow_nan: bool) -> None:
    if allow_nan:
        bad = np.isinf(mat)
        what = "infinite values"
        fix = "replace them with NaN (missing) or finite numbers"
    else:
        bad = ~np.isfinite(mat)
        what = "missing (NaN) or infinite values"
        fix = f"{arg} may not have missing values; impute them or drop those rows from every input"
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise SlamjaxInputError(
            f"{arg}: contains {int(bad.sum())} {what} (first at row {row_names[i]!r}, "
            f"column {col_names[j]!r}, value {mat[i, j]}); {fix}"
        )


def _align_rows(
    mat: np.ndarray,
    rows: list[str] | None,
    arg: str,
    y_rows: list[str],
    y_is_df: bool,
    y_shape: tuple[int, int],
) -> np.ndarray:
    """Align the rows of a design matrix to Y's individuals."""
    if rows is not None and y_is_df:
        _check_unique(rows, arg, "row names (index)", f"give {arg} one row per individual")
        if rows == y_rows:
            return mat
        missing = [r for r in y_rows if r not in set(rows)]
        extra = [r for r in rows if r not in set(y_rows)]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"{len(missing)} of Y's individuals missing from {arg} ({_fmt_names(missing)})")
            if extra:
                parts.append(f"{len(extra)} extra individuals in {arg} not in Y ({_fmt_names(extra)})")
            raise SlamjaxInputError(
                f"{arg}: index does not match Y's index: " + "; ".join(parts)
                + f"; pass {arg} with exactly one row per row of Y (e.g. {arg}.loc[Y.index])"
            )
        pos = {name: i for i, name in enumerate(rows)}
        return mat[[pos[r] for r in y_rows], :]
    if mat.shape[0] != y_shape[0]:
        raise SlamjaxInputError(
            f"{arg}: has {mat.shape[0]} rows but Y has {y_shape[0]} rows "
            f"({arg} shape {mat.shape}, Y shape {y_shape}); pass one row of {arg} per row of Y"
        )
    return mat


def _check_full_rank(mat: np.ndarray, names: list[str], arg: str) -> None:
    """Refuse a rank-deficient design, naming the columns involved in the dependency."""
    n, m = mat.shape
    if m == 0:
        return
    norms = np.linalg.norm(mat, axis=0)
    scaled = mat / np.where(norms > 0, norms, 1.0)
    # full_matrices only when n < m (then U is small); otherwise vt is already (m, m).
    _, s, vt = scipy.linalg.svd(scaled, full_matrices=n < m)
    s_max = s[0] if s.size and s[0] > 0 else 1.0
    tol = max(_RANK_RTOL, max(n, m) * np.finfo(np.float64).eps) * s_max
    rank = int(np.sum(s > tol))
    if rank == m:
        return
    null = vt[rank:, :]  # (m - rank, m), orthonormal rows spanning the null space
    involved = [names[j] for j in range(m) if np.max(np.abs(null[:, j])) > _NULL_ATOL]
    detail = f"rank {rank} < {m} columns"
    if n < m:
        detail += f"; it has more columns ({m}) than rows ({n})"
    raise SlamjaxInputError(
        f"{arg}: columns are collinear ({detail}); the columns involved are "
        f"{_fmt_names(involved, limit=20)}; drop or combine redundant columns "
        f"(e.g. drop one level of each dummy-coded factor)"
    )


def _check_int(value: Any, arg: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral,)):
        raise SlamjaxInputError(
            f"{arg}: must be an int >= {minimum}, got {value!r} of type {type(value).__name__}; "
            f"pass an integer such as {arg}={max(minimum, 2)}"
        )
    value = int(value)
    if value < minimum:
        raise SlamjaxInputError(
            f"{arg}: must be >= {minimum}, got {value}; pass an integer >= {minimum}"
        )
    return value


def _psd_by_cholesky(mat: np.ndarray) -> bool:
    """Cheap sufficient test for min eig >= -_PSD_RTOL * max|eig|.

    Cholesky of K + t I with t = _PSD_RTOL * max(diag K) succeeds only if min eig(K) > -t, and
    max|eig| >= max eig >= max(diag K), so success means K passes the PSD check. On failure the
    caller computes the eigenvalues (to decide exactly and to report the smallest one).
    """
    r = mat.shape[0]
    dmax = float(np.max(np.diag(mat))) if r else 0.0
    if r == 0 or dmax <= 0.0:
        return False
    try:
        scipy.linalg.cholesky(mat + _PSD_RTOL * dmax * np.eye(r), lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return False
    return True


# --------------------------------------------------------------------------- parts


def _validate_Y(Y: Any) -> tuple[np.ndarray, list[str], list[str], bool]:
    if Y is None:
        raise SlamjaxInputError("Y: is None; pass an (n x p) array or DataFrame of responses")
    y_is_df = isinstance(Y, (pd.DataFrame, pd.Series))
    mat, rows, cols = _to_float_matrix(Y, "Y", "trait")
    n, p = mat.shape
    if n == 0 or p == 0:
        raise SlamjaxInputError(
            f"Y: is empty (shape {mat.shape}); pass at least one individual (row) and one trait (column)"
        )
    if rows is None:
        rows = [f"ind{i}" for i in range(n)]
    _check_unique(rows, "Y", "individual names (index)",
                  "give each row a unique name, e.g. Y.reset_index(drop=True)")
    _check_unique(cols, "Y", "trait names (columns)", "give each trait a unique column name")
    _check_finite(mat, "Y", rows, cols, allow_nan=True)
    observed = ~np.isnan(mat)
    all_missing = [cols[j] for j in range(p) if not observed[:, j].any()]
    if all_missing:
        raise SlamjaxInputError(
            f"Y: trait(s) {_fmt_names(all_missing)} have every value missing; drop those columns"
        )
    constant = []
    for j in range(p):
        vals = mat[observed[:, j], j]
        if np.unique(vals).size < 2:
            constant.append(cols[j])
    if constant:
        raise SlamjaxInputError(
            f"Y: trait(s) {_fmt_names(constant)} are constant (fewer than 2 distinct observed values); "
            f"drop those columns"
        )
    return mat, rows, cols, y_is_df


def _validate_X(X, y_rows, y_is_df, y_shape) -> tuple[np.ndarray, list[str]]:
    n = y_shape[0]
    if X is None:
        return np.ones((n, 1)), [INTERCEPT_NAME]
    mat, rows, cols = _to_float_matrix(X, "X", "x")
    mat = _align_rows(mat, rows, "X", y_rows, y_is_df, y_shape)
    _check_finite(mat, "X", y_rows, cols, allow_nan=False)
    ones = [j for j in range(mat.shape[1]) if np.all(mat[:, j] == 1.0)]
    if ones:
        j0 = ones[0]
        order = [j0] + [j for j in range(mat.shape[1]) if j != j0]
        mat = mat[:, order]
        cols = [INTERCEPT_NAME] + [cols[j] for j in order[1:]]
    else:
        mat = np.hstack([np.ones((n, 1)), mat])
        cols = [INTERCEPT_NAME] + cols
    _check_unique(cols, "X", "column names",
                  f"give each column a unique name ({INTERCEPT_NAME!r} is reserved for the all-ones column)")
    _check_full_rank(mat, cols, "X")
    return np.ascontiguousarray(mat), cols


def _validate_X_F(X_F, y_rows, y_is_df, y_shape) -> tuple[np.ndarray, list[str]]:
    n = y_shape[0]
    if X_F is None:
        return np.zeros((n, 0)), []
    mat, rows, cols = _to_float_matrix(X_F, "X_F", "xf")
    mat = _align_rows(mat, rows, "X_F", y_rows, y_is_df, y_shape)
    _check_finite(mat, "X_F", y_rows, cols, allow_nan=False)
    _check_unique(cols, "X_F", "column names", "give each column a unique name")
    constant = [cols[j] for j in range(mat.shape[1]) if np.all(mat[:, j] == mat[0, j])]
    if constant:
        raise SlamjaxInputError(
            f"X_F: column(s) {_fmt_names(constant)} are constant (an intercept); the factor intercept "
            f"is fixed at 0, so X_F must not contain an intercept or constant column; drop them "
            f"(the trait intercept is already in X)"
        )
    _check_full_rank(mat, cols, "X_F")
    return np.ascontiguousarray(mat), cols


def _validate_Z(Z, y_rows, y_is_df, y_shape) -> tuple[np.ndarray, list[str], bool]:
    n = y_shape[0]
    if Z is None:
        return np.eye(n), list(y_rows), False
    z_is_df = isinstance(Z, (pd.DataFrame, pd.Series))
    mat, rows, cols = _to_float_matrix(Z, "Z", "level")
    mat = _align_rows(mat, rows, "Z", y_rows, y_is_df, y_shape)
    if mat.shape[1] == 0:
        raise SlamjaxInputError(
            f"Z: has no columns (shape {mat.shape}); pass an (n x r) incidence matrix or Z=None for identity"
        )
    _check_finite(mat, "Z", y_rows, cols, allow_nan=False)
    _check_unique(cols, "Z", "level names (columns)", "give each level (column) a unique name")
    zero_rows = [y_rows[i] for i in range(n) if not np.any(mat[i] != 0.0)]
    if zero_rows:
        raise SlamjaxInputError(
            f"Z: row(s) for individual(s) {_fmt_names(zero_rows)} are all zero (the individual has no "
            f"level of the random effect); give every row at least one non-zero entry or drop those individuals"
        )
    return np.ascontiguousarray(mat), cols, z_is_df


def _validate_K(K, level_names, z_is_df, z_is_none, y_is_df, z_shape) -> tuple[np.ndarray, list[str]]:
    r = z_shape[1]
    if K is None:
        return np.eye(r), list(level_names)
    k_is_df = isinstance(K, pd.DataFrame)
    if isinstance(K, pd.Series):
        raise SlamjaxInputError("K: must be a square (r x r) matrix, got a Series; pass a 2-D array or DataFrame")
    mat, rows, cols = _to_float_matrix(K, "K", "level")
    if mat.shape[0] != mat.shape[1]:
        raise SlamjaxInputError(
            f"K: must be square but has shape {mat.shape}; pass an (r x r) relationship matrix "
            f"whose rows and columns are the levels of Z"
        )
    if k_is_df:
        _check_unique(rows, "K", "level names (index)", "give each level a unique name")
        _check_unique(cols, "K", "level names (columns)", "give each level a unique name")
        if rows != cols:
            if set(rows) != set(cols):
                raise SlamjaxInputError(
                    f"K: index and columns name different levels (in index only: "
                    f"{_fmt_names([x for x in rows if x not in set(cols)])}; in columns only: "
                    f"{_fmt_names([x for x in cols if x not in set(rows)])}); "
                    f"pass K with the same level names on rows and columns"
                )
            pos = {name: i for i, name in enumerate(cols)}
            mat = mat[:, [pos[x] for x in rows]]
        k_names = rows
    else:
        rows = cols = k_names = [f"level{i}" for i in range(mat.shape[0])]

    # Align K's levels to Z's levels when both carry names.
    align_to: list[str] | None = None
    against = ""
    if k_is_df and z_is_df:
        align_to, against = list(level_names), "Z's columns (levels)"
    elif k_is_df and z_is_none and y_is_df:
        align_to, against = list(level_names), "Y's index (individuals, since Z is None)"
    if align_to is not None:
        if k_names != align_to:
            missing = [x for x in align_to if x not in set(k_names)]
            extra = [x for x in k_names if x not in set(align_to)]
            if missing or extra:
                parts = []
                if missing:
                    parts.append(f"{len(missing)} levels missing from K ({_fmt_names(missing)})")
                if extra:
                    parts.append(f"{len(extra)} extra levels in K ({_fmt_names(extra)})")
                raise SlamjaxInputError(
                    f"K: levels do not match {against}: " + "; ".join(parts)
                    + "; pass K with exactly one row and column per level (e.g. K.loc[levels, levels])"
                )
            pos = {name: i for i, name in enumerate(k_names)}
            idx = [pos[x] for x in align_to]
            mat = mat[np.ix_(idx, idx)]
        out_names = list(align_to)
    else:
        if mat.shape[0] != r:
            raise SlamjaxInputError(
                f"K: has shape {mat.shape} but Z has shape {z_shape} ({r} columns = levels); "
                f"K must be (r x r) with r = number of columns of Z"
            )
        # Z carries no names of its own (array or None with array Y): use K's names if it has them.
        out_names = list(k_names) if (k_is_df and not z_is_df) else list(level_names)

    if mat.shape[0] != r:  # pragma: no cover - guarded by alignment above
        raise SlamjaxInputError(
            f"K: has shape {mat.shape} but Z has shape {z_shape}; K must be (r x r) with r = columns of Z"
        )
    _check_finite(mat, "K", out_names, out_names, allow_nan=False)
    max_abs = float(np.max(np.abs(mat))) if mat.size else 0.0
    asym = np.abs(mat - mat.T)
    if asym.size and asym.max() > _SYM_RTOL * max_abs:
        i, j = np.unravel_index(int(np.argmax(asym)), asym.shape)
        raise SlamjaxInputError(
            f"K: not symmetric (max |K - K.T| = {asym[i, j]:.3g} at rows {out_names[i]!r},{out_names[j]!r}); "
            f"pass a symmetric matrix, e.g. (K + K.T) / 2"
        )
    mat = (mat + mat.T) / 2.0
    if _psd_by_cholesky(mat):
        return np.ascontiguousarray(mat), out_names
    eig = scipy.linalg.eigvalsh(mat)
    scale = float(np.max(np.abs(eig))) if eig.size else 0.0
    if eig.size and eig[0] < -_PSD_RTOL * scale:
        raise SlamjaxInputError(
            f"K: not positive semi-definite (smallest eigenvalue {eig[0]:.3g}, largest {eig[-1]:.3g}); "
            f"add a small ridge (e.g. K + 1e-4 * np.eye(r)) or use a nearest-PSD projection "
            f"(clip negative eigenvalues to 0)"
        )
    return np.ascontiguousarray(mat), out_names


# --------------------------------------------------------------------------- entry point


def validate_inputs(
    Y: Any,
    X: Any = None,
    X_F: Any = None,
    Z: Any = None,
    K: Any = None,
    *,
    n_factors: int,
    h2_divisions: int,
) -> ValidatedData:
    """Check and normalise the model inputs.

    Args:
      Y: (n x p) array or DataFrame (index = individuals, columns = traits); NaN = missing.
      X: None (intercept only) or (n x b) fixed-effect design; an all-ones column becomes
        column 0 "(Intercept)", otherwise one is prepended.
      X_F: None or (n x b_F) factor fixed-effect design without intercept.
      Z: None (identity, levels = individuals) or (n x r) random-effect design.
      K: None (identity) or (r x r) symmetric PSD relationship matrix over Z's levels.
      n_factors: number of latent factors, 1 <= n_factors <= p.
      h2_divisions: grid size for heritabilities, >= 2.

    DataFrames are aligned by name: X, X_F, Z rows to Y's index; K to Z's columns (or to
    Y's index when Z is None). Arrays are taken positionally.

    Raises:
      SlamjaxInputError: naming the argument, the problem and a fix.
    """
    y, ind_names, trait_names, y_is_df = _validate_Y(Y)
    n, p = y.shape
    n_factors = _check_int(n_factors, "n_factors", 1)
    if n_factors > p:
        raise SlamjaxInputError(
            f"n_factors: {n_factors} is more factors than traits (Y has p = {p} traits); "
            f"pass n_factors <= {p}"
        )
    h2_divisions = _check_int(h2_divisions, "h2_divisions", 2)

    x, fixed_names = _validate_X(X, ind_names, y_is_df, y.shape)
    x_f, factor_fixed_names = _validate_X_F(X_F, ind_names, y_is_df, y.shape)
    z, level_names, z_is_df = _validate_Z(Z, ind_names, y_is_df, y.shape)
    k, level_names = _validate_K(K, level_names, z_is_df, Z is None, y_is_df, z.shape)

    return ValidatedData(
        Y=np.ascontiguousarray(y, dtype=np.float64),
        X=x,
        X_F=x_f,
        Z=z,
        K=k,
        individual_names=list(ind_names),
        trait_names=list(trait_names),
        fixed_names=list(fixed_names),
        factor_fixed_names=list(factor_fixed_names),
        level_names=list(level_names),
    )
