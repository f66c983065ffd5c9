"""Model formulas (lme4 syntax) to design matrices, run before any JAX code.

:func:`build_design` turns a data frame and an lme4-style formula such as
``"~ Population + (1|Line)"`` into a :class:`Design`: the fixed-effect design ``X``
of the traits, one :class:`RandomTerm` (incidence matrix ``Z`` and covariance ``K``
over the levels) per random intercept ``(1|g)``, and the same for the latent factors
(``X_F`` and ``factor_random``).

The random terms are split out of the formula by a small tokenizer of our own (only
random intercepts ``(1|g)`` are supported); the fixed part is handed to
`formulaic <https://matthewwardrop.github.io/formulaic/>`_, which uses treatment
contrasts for categorical variables (strings, pandas categoricals and booleans; the
first level is the reference), takes numeric covariates as they are and supports
interactions (``a:b``, ``a*b``) and transforms (``np.log(x)``, ``I(x**2)``, ``C(x)``).

Column names follow formulaic, except that the intercept is called ``"(Intercept)"``
(as in R):

* a categorical ``Population`` with levels a < b < c and an intercept gives
  ``Population[T.b]``, ``Population[T.c]``; without an intercept (``~ 0 + Population``)
  it gives every level, ``Population[a]``, ``Population[b]``, ``Population[c]``;
* a boolean ``flag`` gives ``flag[T.True]``;
* an interaction gives ``sex[T.M]:season[T.w]``; an interaction without its main
  effects is coded to stay full rank, e.g. ``sex[T.M]:season[s]``, ``sex[T.M]:season[w]``.

:func:`wide` pivots a tall table (one row per individual x trait observation) into
the individuals x traits table that the model takes as responses.

This module imports only numpy, pandas, scipy (through ``_validate``) and formulaic.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg

from ._errors import SlamjaxInputError
from ._validate import (
    INTERCEPT_NAME,
    _PSD_RTOL,
    _SYM_RTOL,
    _check_full_rank,
    _duplicates,
    _fmt_names,
    _psd_by_cholesky,
    _to_float_matrix,
)

__all__ = ["RandomTerm", "Design", "build_design", "check_relationship", "wide"]

_MAX_LISTED = 5
_EXAMPLE = '"~ Population + (1|Line)"'
_FORMULAIC_INTERCEPT = "Intercept"


# --------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True, eq=False)
class RandomTerm:
    """One random intercept ``(1|group)``.

    Attributes:
      group: the grouping variable, e.g. ``"Line"``.
      Z: (n, r) float64 incidence matrix, ``Z[i, l] = 1`` when row i has level l.
      K: (r, r) float64 symmetric PSD covariance over the levels (identity without relmat).
      levels: the r level names (strings), the order of Z's columns and K's rows.
    """

    group: str
    Z: np.ndarray
    K: np.ndarray
    levels: list[str]

    @property
    def r(self) -> int:
        return len(self.levels)

    @property
    def term(self) -> str:
        return f"(1|{self.group})"


@dataclasses.dataclass(frozen=True, eq=False)
class Design:
    """Design matrices built from a formula.

    Attributes:
      X: (n, b) fixed effects of the traits, index = data.index; ``"(Intercept)"`` first
        when the formula has an intercept.
      random: random effects of the traits, in formula order.
      X_F: (n, b_F) fixed effects of the factors, never an intercept (the factor
        intercept is fixed at 0); 0 columns when there are none.
      factor_random: random effects of the factors, in formula order.
    """

    X: pd.DataFrame
    random: list[RandomTerm]
    X_F: pd.DataFrame
    factor_random: list[RandomTerm]


# --------------------------------------------------------------------------- tokenizer

_IDENT = re.compile(r"^(?:[A-Za-z_.][A-Za-z0-9_.]*|`[^`]+`)$")


@dataclasses.dataclass(frozen=True)
class _ParsedFormula:
    fixed: str  # the fixed part, for formulaic ("1" when only random terms were given)
    groups: list[str]  # grouping variables of the random terms, in order


def _split_top_level_plus(rhs: str, arg: str, formula: str) -> list[str]:
    """Split on '+' outside parentheses/brackets/quotes."""
    parts: list[str] = []
    depth = 0
    quote: str | None = None
    start = 0
    for i, ch in enumerate(rhs):
        if quote is not None:
            if ch == quote:
                quote = None
            continue
        if ch in "`'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                raise SlamjaxInputError(
                    f"{arg}: unbalanced parentheses in {formula!r} (a ')' without '('); "
                    f"fix the formula, e.g. {_EXAMPLE}"
                )
        elif ch == "+" and depth == 0:
            parts.append(rhs[start:i])
            start = i + 1
    if depth != 0 or quote is not None:
        raise SlamjaxInputError(
            f"{arg}: unbalanced parentheses or quotes in {formula!r}; fix the formula, e.g. {_EXAMPLE}"
        )
    parts.append(rhs[start:])
    return [p.strip() for p in parts]


def _outer_parens_content(term: str) -> str | None:
    """'( ... )' wrapping the whole term -> its content, else None."""
    if not (term.startswith("(") and term.endswith(")")):
        return None
    depth = 0
    for i, ch in enumerate(term):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0 and i != len(term) - 1:
                return None
    return term[1:-1]


def _parse_formula(formula: Any, arg: str) -> _ParsedFormula:
    if not isinstance(formula, str):
        raise SlamjaxInputError(
            f"{arg}: must be a string such as {_EXAMPLE}, got {type(formula).__name__}"
        )
    if "~" not in formula:
        raise SlamjaxInputError(
            f"{arg}: {formula!r} has no '~'; write a one-sided formula such as {_EXAMPLE}"
        )
    lhs, _, rhs = formula.partition("~")
    if lhs.strip():
        raise SlamjaxInputError(
            f"{arg}: {formula!r} has a left-hand side ({lhs.strip()!r}); the responses are passed "
            f"as a table, not in the formula; write a one-sided formula such as {_EXAMPLE}"
        )
    if "~" in rhs:
        raise SlamjaxInputError(
            f"{arg}: {formula!r} has more than one '~'; write a one-sided formula such as {_EXAMPLE}"
        )
    if not rhs.strip():
        raise SlamjaxInputError(
            f"{arg}: {formula!r} has nothing after '~'; write e.g. \"~ 1\" for an intercept only "
            f"or {_EXAMPLE}"
        )
    fixed_terms: list[str] = []
    groups: list[str] = []
    for term in _split_top_level_plus(rhs, arg, formula):
        if "|" not in term:
            if not term:
                raise SlamjaxInputError(
                    f"{arg}: {formula!r} has an empty term (a stray '+'); fix the formula, "
                    f"e.g. {_EXAMPLE}"
                )
            fixed_terms.append(term)
            continue
        content = _outer_parens_content(term)
        if content is None or _outer_parens_content(content.strip()) is not None:
            raise SlamjaxInputError(
                f"{arg}: term {term!r} in {formula!r} is not understood; a random term must be "
                f"written '(1|group)' and added with '+', e.g. {_EXAMPLE}"
            )
        lhs_r, sep, rhs_r = content.partition("|")
        lhs_r, rhs_r = lhs_r.strip(), rhs_r.strip()
        if rhs_r.startswith("|"):
            raise SlamjaxInputError(
                f"{arg}: random term {term!r} (uncorrelated '||' terms) is not supported yet; "
                f"only random intercepts '(1|group)' are supported"
            )
        if lhs_r != "1":
            raise SlamjaxInputError(
                f"{arg}: random term {term!r} (random slopes) is not supported yet; only random "
                f"intercepts '(1|group)' are supported"
            )
        if not _IDENT.match(rhs_r):
            raise SlamjaxInputError(
                f"{arg}: random term {term!r} (nested, crossed or computed grouping) is not "
                f"supported yet; only random intercepts '(1|group)' on one column are supported "
                f"(for nested groups make one column, e.g. data['g_h'] = data['g'] + '_' + data['h'], "
                f"and write '(1|g_h)')"
            )
        group = rhs_r[1:-1] if rhs_r.startswith("`") else rhs_r
        if group in groups:
            raise SlamjaxInputError(
                f"{arg}: random term '(1|{group})' appears twice in {formula!r}; write it once"
            )
        groups.append(group)
    fixed = " + ".join(fixed_terms) if fixed_terms else "1"  # lme4: the intercept is implicit
    return _ParsedFormula(fixed=fixed, groups=groups)


# --------------------------------------------------------------------------- data lookup


def _available(data: pd.DataFrame) -> list[str]:
    names = [str(c) for c in data.columns]
    if data.index.name is not None and str(data.index.name) not in names:
        names.append(str(data.index.name))
    return names


def _unknown_column_error(arg: str, name: str, data: pd.DataFrame, where: str) -> SlamjaxInputError:
    avail = _available(data)
    close = difflib.get_close_matches(name, avail, n=3, cutoff=0.6)
    hint = f"; did you mean {_fmt_names(close)}?" if close else ""
    return SlamjaxInputError(
        f"{arg}: {where} {name!r} is not a column of data{hint} (available columns: "
        f"{_fmt_names(avail, limit=20)}); fix the formula or add the column"
    )


def _get_column(data: pd.DataFrame, name: str, arg: str, where: str) -> pd.Series:
    if name in data.columns:
        col = data[name]
        if isinstance(col, pd.DataFrame):
            raise SlamjaxInputError(
                f"data: column name {name!r} is duplicated; give each column a unique name"
            )
        return col
    if data.index.name is not None and str(data.index.name) == name:
        return pd.Series(data.index, index=data.index, name=name)
    raise _unknown_column_error(arg, name, data, where)


def _missing_rows_error(arg: str, name: str, col: pd.Series, what: str) -> SlamjaxInputError:
    rows = [str(i) for i in col.index[col.isna().to_numpy()]]
    return SlamjaxInputError(
        f"data: column {name!r} (used by {arg}) has {len(rows)} missing value(s) at row(s) "
        f"{_fmt_names(rows)}; {what} may not have missing values: impute them or drop those rows "
        f"(e.g. data.dropna(subset=[{name!r}])) from data and the responses"
    )


# --------------------------------------------------------------------------- fixed part


def _eval_frame(data: pd.DataFrame) -> pd.DataFrame:
    """Data as formulaic sees it: the named index as a column, booleans as categoricals,
    unused categories dropped."""
    frame = data.copy()
    if data.index.name is not None and str(data.index.name) not in frame.columns:
        frame[str(data.index.name)] = data.index.to_numpy()
    for c in frame.columns:
        dtype = frame[c].dtype
        if pd.api.types.is_bool_dtype(dtype):
            frame[c] = pd.Categorical(frame[c], categories=[v for v in (False, True) if (frame[c] == v).any()])
        elif isinstance(dtype, pd.CategoricalDtype):
            # formulaic makes an all-zero column for an unused category; drop them, as lme4 does
            frame[c] = frame[c].cat.remove_unused_categories()
    return frame


def _fixed_design(
    data: pd.DataFrame, fixed: str, arg: str, force_intercept: bool
) -> tuple[np.ndarray, list[str]]:
    try:  # local: keep `import slamjax` light
        import formulaic
        from formulaic.errors import FormulaicError
    except ImportError:  # pragma: no cover - formulaic is a dependency
        raise ImportError(
            "slamjax.formula needs the formulaic package for the fixed effects; "
            "install it with `pip install formulaic`"
        ) from None

    spec = f"{fixed} + 1" if force_intercept else fixed  # a trailing "+ 1" overrides "0 +" / "- 1"
    try:
        parsed = formulaic.Formula(spec)
    except FormulaicError as exc:
        raise SlamjaxInputError(
            f"{arg}: could not parse the fixed part {fixed!r} ({exc}); fix the formula, "
            f"e.g. {_EXAMPLE}"
        ) from None
    for var in sorted(parsed.required_variables, key=str):
        roles = {getattr(r, "value", r) for r in getattr(var, "roles", {"value"})}
        if "value" not in roles:
            continue
        name = str(var)
        col = _get_column(data, name, arg, "variable")
        if col.isna().any():
            raise _missing_rows_error(arg, name, col, "fixed effects")
        is_numeric = pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)
        if not is_numeric and col.nunique() < 2:
            # formulaic would silently drop it (R refuses: contrasts need 2 or more levels)
            raise SlamjaxInputError(
                f"{arg}: categorical variable {name!r} has a single level ({str(col.iloc[0])!r}), so "
                f"it has no effect beside the intercept; drop it from the formula"
            )
    frame = _eval_frame(data)
    try:
        mm = formulaic.model_matrix(spec, frame, na_action="raise")
    except FormulaicError as exc:
        raise SlamjaxInputError(
            f"{arg}: could not build the fixed effects from {fixed!r} ({exc}); fix the formula, "
            f"e.g. {_EXAMPLE}"
        ) from None
    except ValueError as exc:  # formulaic's na_action="raise" (e.g. a transform made NaN)
        raise SlamjaxInputError(
            f"{arg}: the fixed effects of {fixed!r} have missing values ({exc}); impute them or "
            f"drop those rows"
        ) from None
    names = [str(c) for c in mm.columns]
    mat = np.asarray(mm.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    if mat.shape[0] != data.shape[0]:  # pragma: no cover - na_action="raise" prevents this
        raise SlamjaxInputError(f"{arg}: formulaic dropped rows; remove missing values first")
    has_intercept = "1" in [str(t) for t in parsed]
    if has_intercept and _FORMULAIC_INTERCEPT in names:
        j = names.index(_FORMULAIC_INTERCEPT)
        if np.all(mat[:, j] == 1.0):
            names[j] = INTERCEPT_NAME
            order = [j] + [k for k in range(len(names)) if k != j]
            mat, names = mat[:, order], [names[k] for k in order]
    bad = ~np.isfinite(mat)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise SlamjaxInputError(
            f"{arg}: fixed-effect column {names[j]!r} has {int(bad[:, j].sum())} non-finite value(s) "
            f"(first at row {str(data.index[i])!r}); check the transform or the data"
        )
    dups = _duplicates(names)
    if dups:
        raise SlamjaxInputError(
            f"{arg}: fixed-effect columns {_fmt_names(dups)} are duplicated; rename the data columns"
        )
    return mat, names


# --------------------------------------------------------------------------- relationship matrices


def check_relationship(K: Any, name: str, arg: str | None = None) -> tuple[np.ndarray, list[str]]:
    """Check a covariance over levels; return (float64 symmetric K, level names as strings).

    K is a DataFrame with index == columns (level names; columns are reordered to the index
    when they are a permutation of it), or a pair ``(array, level_names)``, or a dict
    ``{"K": array, "levels": level_names}``. It must be square, finite, symmetric within
    1e-8 relative, PSD within -1e-8 relative and have unique level names. ``arg`` names it in
    messages (default ``relmat[name]``).
    """
    arg = f"relmat[{name!r}]" if arg is None else arg
    if isinstance(K, pd.DataFrame):
        if K.shape[0] != K.shape[1]:
            raise SlamjaxInputError(
                f"{arg}: must be square but has shape {K.shape}; pass an (r x r) covariance with "
                f"the level names as index and columns"
            )
        mat, rows, cols = _to_float_matrix(K, arg, "level")
        rows, cols = list(rows), list(cols)
        for names_, what in ((rows, "index"), (cols, "columns")):
            dups = _duplicates(names_)
            if dups:
                raise SlamjaxInputError(
                    f"{arg}: duplicated level names in its {what}: {_fmt_names(dups)}; "
                    f"give each level one row and one column"
                )
        if rows != cols:
            if set(rows) != set(cols):
                raise SlamjaxInputError(
                    f"{arg}: index and columns name different levels (in index only: "
                    f"{_fmt_names([x for x in rows if x not in set(cols)])}; in columns only: "
                    f"{_fmt_names([x for x in cols if x not in set(rows)])}); pass a covariance "
                    f"with the same level names on rows and columns"
                )
            pos = {c: j for j, c in enumerate(cols)}
            mat = mat[:, [pos[x] for x in rows]]
        levels = rows
    else:
        if isinstance(K, dict) and set(K) == {"K", "levels"}:
            arr, names = K["K"], K["levels"]
        elif isinstance(K, (tuple, list)) and len(K) == 2:
            arr, names = K
        else:
            raise SlamjaxInputError(
                f"{arg}: got {type(K).__name__}; pass a DataFrame with the level names as index "
                f"and columns, or a pair (array, level_names)"
            )
        mat, _, _ = _to_float_matrix(arr, arg, "level")
        if mat.shape[0] != mat.shape[1]:
            raise SlamjaxInputError(
                f"{arg}: must be square but has shape {mat.shape}; pass an (r x r) covariance"
            )
        if isinstance(names, str) or np.ndim(names) != 1:
            raise SlamjaxInputError(
                f"{arg}: level_names must be a list of {mat.shape[0]} names; pass (array, list_of_names)"
            )
        levels = [str(x) for x in names]
        if len(levels) != mat.shape[0]:
            raise SlamjaxInputError(
                f"{arg}: {len(levels)} level names for a {mat.shape[0]} x {mat.shape[1]} matrix; "
                f"pass one name per row"
            )
        dups = _duplicates(levels)
        if dups:
            raise SlamjaxInputError(
                f"{arg}: duplicated level names {_fmt_names(dups)}; give each level one row and one column"
            )
    if mat.shape[0] == 0:
        raise SlamjaxInputError(f"{arg}: is empty; pass an (r x r) covariance with r >= 1")
    bad = ~np.isfinite(mat)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise SlamjaxInputError(
            f"{arg}: has {int(bad.sum())} missing or infinite value(s) (first at levels "
            f"{levels[i]!r},{levels[j]!r}); pass a finite matrix"
        )
    max_abs = float(np.max(np.abs(mat)))
    asym = np.abs(mat - mat.T)
    if asym.max() > _SYM_RTOL * max_abs:
        i, j = np.unravel_index(int(np.argmax(asym)), asym.shape)
        raise SlamjaxInputError(
            f"{arg}: not symmetric (max |K - K.T| = {asym[i, j]:.3g} at levels "
            f"{levels[i]!r},{levels[j]!r}); pass a symmetric matrix, e.g. (K + K.T) / 2"
        )
    mat = (mat + mat.T) / 2.0
    if not _psd_by_cholesky(mat):
        eig = scipy.linalg.eigvalsh(mat)
        scale = float(np.max(np.abs(eig)))
        if eig[0] < -_PSD_RTOL * scale:
            raise SlamjaxInputError(
                f"{arg}: not positive semi-definite (smallest eigenvalue {eig[0]:.3g}, largest "
                f"{eig[-1]:.3g}); add a small ridge (e.g. K + 1e-4 * np.eye(r)) or clip the negative "
                f"eigenvalues to 0"
            )
    return np.ascontiguousarray(mat), levels


# --------------------------------------------------------------------------- random part


def _group_labels(data: pd.DataFrame, group: str, arg: str) -> tuple[list[str], list[str]]:
    """Return (label of each row as a string, the data levels in lme4 order)."""
    term = f"(1|{group})"
    col = _get_column(data, group, arg, f"grouping variable of {term}")
    if col.isna().any():
        raise _missing_rows_error(arg, group, col, f"the grouping variable of {term}")
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        observed = set(col.astype(object).tolist())
        ordered = [c for c in dtype.categories if c in observed]  # categories order, unused dropped
    elif pd.api.types.is_float_dtype(dtype) or pd.api.types.is_complex_dtype(dtype):
        raise SlamjaxInputError(
            f"{arg}: {term}: {group} is numeric ({dtype}); a grouping variable must hold labels — "
            f"convert it with data[{group!r}].astype(str) if it is an ID (or "
            f".astype('int64').astype(str) for whole numbers stored as floats)"
        )
    elif pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype):
        ordered = sorted(pd.unique(col))  # numeric order, as R's factor()
    else:
        ordered = sorted(set(col.tolist()), key=str)
    labels = [str(v) for v in col.tolist()]
    levels = list(dict.fromkeys(str(v) for v in ordered))  # distinct values may print alike
    return labels, levels


def _random_term(
    data: pd.DataFrame, group: str, arg: str, relmat: dict[str, tuple[np.ndarray, list[str]]]
) -> RandomTerm:
    labels, data_levels = _group_labels(data, group, arg)
    if group in relmat:
        K, levels = relmat[group]
        known = set(levels)
        missing = [x for x in data_levels if x not in known]
        if missing:
            raise SlamjaxInputError(
                f"relmat[{group!r}]: {len(missing)} level(s) of {group!r} in data are missing "
                f"from the covariance: {_fmt_names(missing)}; add them to relmat[{group!r}] or "
                f"drop those rows from data"
            )
    else:
        levels = data_levels
        K = np.eye(len(levels))
    pos = {x: j for j, x in enumerate(levels)}
    Z = np.zeros((len(labels), len(levels)), dtype=np.float64)
    Z[np.arange(len(labels)), [pos[x] for x in labels]] = 1.0
    return RandomTerm(group=group, Z=Z, K=np.array(K, dtype=np.float64), levels=list(levels))


# --------------------------------------------------------------------------- entry point


def _check_data(data: Any) -> None:
    if not isinstance(data, pd.DataFrame):
        raise SlamjaxInputError(
            f"data: must be a pandas DataFrame (one row per individual, one column per variable), "
            f"got {type(data).__name__}; e.g. pd.read_csv('data.csv')"
        )
    if data.shape[0] == 0:
        raise SlamjaxInputError(
            "data: has no rows; pass one row per individual (the rows of the responses)"
        )
    if isinstance(data.index, pd.MultiIndex) or isinstance(data.columns, pd.MultiIndex):
        raise SlamjaxInputError(
            "data: MultiIndex rows/columns are not supported; flatten them (e.g. data.reset_index())"
        )
    dups = _duplicates([str(i) for i in data.index])
    if dups:
        raise SlamjaxInputError(
            f"data: duplicated index (row names) {_fmt_names(dups)}; give each row (individual) a "
            f"unique name, e.g. data.reset_index(drop=True)"
        )
    dcols = _duplicates([str(c) for c in data.columns])
    if dcols:
        raise SlamjaxInputError(
            f"data: duplicated column names {_fmt_names(dcols)}; give each column a unique name"
        )


def build_design(
    data: pd.DataFrame,
    formula: str,
    relmat: dict | None = None,
    factor_formula: str | None = None,
) -> Design:
    """Build the design matrices of a model from an lme4-style formula.

    Args:
      data: one row per individual (index = individual names, unique); the columns hold the
        covariates and grouping variables (a named index can be used as a grouping variable).
      formula: fixed and random effects of the traits, e.g. ``"~ Population + (1|Line)"``,
        ``"~ sex + season + weight + sex:season + (1|mouse) + (1|cage)"``,
        ``"~ 0 + x + (1|g)"`` (no intercept), ``"~ 1 + (1|line)"``. Only random intercepts
        ``(1|g)`` are supported. The fixed part is built by formulaic with treatment
        contrasts; the intercept is implicit, as in lme4 (remove it with ``0 +``).
      relmat: maps a grouping variable to a covariance over its levels: a DataFrame with
        index == columns (level names), or a pair ``(array, level_names)``. Its row order
        defines the level order; levels absent from data get an all-zero column of Z (their
        values can then be predicted). A grouping variable without relmat gets the identity
        over its levels in data, in lme4 order: sorted strings, numeric order for integer
        and boolean columns, category order for pandas categoricals (unused categories
        dropped). Level names are compared as strings.
      factor_formula: fixed and random effects of the latent factors. None: the factors get
        the traits' random terms (the same RandomTerm objects) and no fixed effects.
        Otherwise e.g. ``"~ Population + (1|Line)"``: the fixed part is built with
        treatment contrasts *with* an intercept and the intercept column is then dropped,
        because the factor intercept is fixed at 0 (so a categorical loses its reference
        level; a ``0 +`` or ``- 1`` in factor_formula is accepted and changes nothing, and
        ``"~ (1|Line)"`` gives X_F with 0 columns).

    Returns:
      A :class:`Design`.

    Raises:
      SlamjaxInputError: naming the argument, the problem and a fix.
    """
    _check_data(data)
    parsed = _parse_formula(formula, "formula")
    parsed_f = None if factor_formula is None else _parse_formula(factor_formula, "factor_formula")

    # relationship matrices
    groups_all = list(parsed.groups) + ([g for g in parsed_f.groups if g not in parsed.groups]
                                        if parsed_f is not None else [])
    if relmat is None:
        relmat = {}
    if not isinstance(relmat, dict):
        raise SlamjaxInputError(
            f"relmat: must be a dict mapping a grouping variable to its covariance, got "
            f"{type(relmat).__name__}; e.g. relmat={{'Line': K}}"
        )
    unknown = [k for k in relmat if k not in groups_all]
    if unknown:
        present = ", ".join(f"(1|{g})" for g in groups_all) or "none"
        raise SlamjaxInputError(
            f"relmat: key(s) {_fmt_names(unknown)} are not grouping variables of any random term "
            f"(random terms present: {present}); use the grouping variable as the key, e.g. "
            f"relmat={{'Line': K}} for (1|Line)"
        )
    checked = {g: check_relationship(K, g) for g, K in relmat.items()}

    # traits
    x, x_names = _fixed_design(data, parsed.fixed, "formula", force_intercept=False)
    _check_full_rank(x, x_names, "formula")
    terms = {g: _random_term(data, g, "formula", checked) for g in parsed.groups}
    random = [terms[g] for g in parsed.groups]

    # factors
    if parsed_f is None:
        xf, xf_names = np.zeros((data.shape[0], 0)), []
        factor_random = list(random)
    else:
        xf1, xf1_names = _fixed_design(data, parsed_f.fixed, "factor_formula", force_intercept=True)
        _check_full_rank(xf1, xf1_names, "factor_formula")
        keep = [j for j, nm in enumerate(xf1_names) if nm != INTERCEPT_NAME]
        xf, xf_names = xf1[:, keep], [xf1_names[j] for j in keep]
        factor_random = [
            terms[g] if g in terms else _random_term(data, g, "factor_formula", checked)
            for g in parsed_f.groups
        ]

    X = pd.DataFrame(x, index=data.index, columns=x_names)
    X_F = pd.DataFrame(xf, index=data.index, columns=pd.Index(xf_names, dtype=object))
    return Design(X=X, random=random, X_F=X_F, factor_random=factor_random)


# --------------------------------------------------------------------------- tall -> wide


def wide(df: pd.DataFrame, *, id: str, trait: str, value: str) -> pd.DataFrame:
    """Pivot a tall table (one row per individual x trait observation) to individuals x traits.

    Missing cells are NaN. Rows and columns are in order of first appearance; the index is
    named ``id`` and the columns ``trait``. Duplicated (id, trait) pairs are refused.
    """
    if not isinstance(df, pd.DataFrame):
        raise SlamjaxInputError(
            f"df: must be a pandas DataFrame (a tall table), got {type(df).__name__}"
        )
    for arg, col in (("id", id), ("trait", trait), ("value", value)):
        if col not in df.columns:
            close = difflib.get_close_matches(str(col), [str(c) for c in df.columns], n=3, cutoff=0.6)
            hint = f"; did you mean {_fmt_names(close)}?" if close else ""
            raise SlamjaxInputError(
                f"{arg}: column {col!r} is not in df{hint} (columns: "
                f"{_fmt_names(list(df.columns), limit=20)}); pass {arg}= the name of a column"
            )
    if len({id, trait, value}) != 3:
        raise SlamjaxInputError(
            f"wide: id, trait and value must be three different columns, got {id!r}, {trait!r}, {value!r}"
        )
    for arg, col in (("id", id), ("trait", trait)):
        if df[col].isna().any():
            rows = [str(i) for i in df.index[df[col].isna().to_numpy()]]
            raise SlamjaxInputError(
                f"{arg}: column {col!r} has {len(rows)} missing value(s) at row(s) {_fmt_names(rows)}; "
                f"drop those rows"
            )
    dup = df.duplicated(subset=[id, trait], keep=False)
    if dup.any():
        pairs = list(dict.fromkeys(zip(df.loc[dup, id].tolist(), df.loc[dup, trait].tolist())))
        shown = ", ".join(f"({a!r}, {b!r})" for a, b in pairs[:_MAX_LISTED])
        if len(pairs) > _MAX_LISTED:
            shown += f", ... ({len(pairs)} in all)"
        raise SlamjaxInputError(
            f"df: duplicated ({id}, {trait}) pairs {shown}; keep one observation per individual "
            f"and trait (e.g. average them with df.groupby([{id!r}, {trait!r}], as_index=False)"
            f"[{value!r}].mean())"
        )
    ids = pd.unique(df[id])
    traits = pd.unique(df[trait])
    out = df.pivot(index=id, columns=trait, values=value)
    out = out.reindex(index=ids, columns=traits)
    out.index.name = id
    out.columns.name = trait
    return out
