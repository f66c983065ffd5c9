"""Relationship matrices: genomic (VanRaden 2008) and pedigree-based (tabular method).

Both functions return a square matrix ready for the ``relmat`` argument of
:class:`slamjax.Model` (keyed by the grouping factor whose levels index it).

References
----------
VanRaden, P. M. (2008). Efficient methods to compute genomic predictions.
*Journal of Dairy Science* 91(11):4414-4423.

Henderson, C. R. (1976). A simple method for computing the inverse of a
numerator relationship matrix used in prediction of breeding values.
*Biometrics* 32(1):69-83 (the tabular method is recalled there).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Hashable
from typing import Literal

import numpy as np
import pandas as pd

from ._errors import SlamjaxInputError

__all__ = ["grm", "pedigree_relationship"]

# coding -> (smallest code, largest code, shift, scale): allele count = (code + shift) * scale
_CODINGS: dict[str, tuple[float, float, float, float]] = {
    "012": (0.0, 2.0, 0.0, 1.0),
    "01": (0.0, 1.0, 0.0, 2.0),
    "-101": (-1.0, 1.0, 1.0, 1.0),
}


# ----------------------------------------------------------------------------- GRM


def grm(
    genotypes: np.ndarray | pd.DataFrame,
    *,
    coding: Literal["012", "01", "-101"] = "012",
) -> np.ndarray | pd.DataFrame:
    """Genomic relationship matrix by VanRaden's (2008) method 1.

    With ``M`` the individuals x markers matrix of allele counts (0, 1, 2) and
    ``p_j`` the frequency of the counted allele at marker ``j`` (half the
    marker mean), ``Z = M - 2p`` and ``G = Z Z' / (2 sum_j p_j (1 - p_j))``.

    Parameters
    ----------
    genotypes:
        Array or DataFrame, individuals x markers, numeric. Missing genotypes
        are ``NaN``. Values between the codes (imputed dosages) are accepted.
    coding:
        How the genotypes are coded:

        * ``"012"`` (default): allele counts 0, 1, 2 (diploid outbred, e.g. mice SNPs);
        * ``"01"``: one code per homozygous genotype, as for inbred lines or
          RILs (e.g. wheat DArT markers, 0/1 founder alleles). The codes are
          doubled to allele counts 0/2, so a fully inbred line has an expected
          diagonal of about 2 (``1 + F`` with ``F = 1``);
        * ``"-101"``: -1, 0, 1 (as in BGLR / rrBLUP); 1 is added to get 0, 1, 2.

    Returns
    -------
    numpy.ndarray or pandas.DataFrame
        The n x n matrix ``G``; a DataFrame with index and columns the index
        of ``genotypes`` when a DataFrame is given.

    Notes
    -----
    * A missing genotype is replaced by the marker mean (over the individuals
      where it is observed), i.e. it contributes 0 to ``Z``.
    * Monomorphic markers (a single observed value) and markers with no
      observed genotype carry no information and are dropped before the
      frequencies enter the scaling.
    * ``G`` is positive semi-definite with rank at most ``n - 1`` (the columns
      of ``Z`` are centred); add a small ridge (e.g. ``G + 1e-3 I``) or blend
      it with a pedigree matrix if a positive definite matrix is needed.
    """
    if coding not in _CODINGS:
        raise SlamjaxInputError(
            f"grm(coding={coding!r}): unknown coding; use one of {sorted(_CODINGS)} "
            "('012' allele counts, '01' inbred lines, '-101' centred counts)."
        )
    index = None
    if isinstance(genotypes, pd.DataFrame):
        bad = [
            c
            for c, t in genotypes.dtypes.items()
            if not pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t)
        ]
        if bad:
            raise SlamjaxInputError(
                f"grm(genotypes): {len(bad)} column(s) are not numeric (first: {bad[0]!r}); "
                "recode the genotypes as numbers (e.g. 0/1/2, missing as NaN)."
            )
        index = genotypes.index
        M = genotypes.to_numpy(dtype=float, na_value=np.nan)
    else:
        arr = np.asarray(genotypes)
        if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise SlamjaxInputError(
                f"grm(genotypes): the array has dtype {arr.dtype}, not numeric; "
                "recode the genotypes as numbers (e.g. 0/1/2, missing as NaN)."
            )
        M = arr.astype(float)
    if M.ndim != 2:
        raise SlamjaxInputError(
            f"grm(genotypes): expected a 2-D individuals x markers matrix, got {M.ndim} dimension(s); "
            "pass one row per individual and one column per marker."
        )
    n, m = M.shape
    if n < 2:
        raise SlamjaxInputError(
            f"grm(genotypes): {n} individual(s); a relationship matrix needs at least 2 rows."
        )
    if np.isinf(M).any():
        raise SlamjaxInputError(
            "grm(genotypes): infinite values; code missing genotypes as NaN."
        )
    lo, hi, shift, scale = _CODINGS[coding]
    obs = ~np.isnan(M)
    out_of_range = obs & ((M < lo) | (M > hi))
    if out_of_range.any():
        i, j = np.argwhere(out_of_range)[0]
        raise SlamjaxInputError(
            f"grm(genotypes): value {M[i, j]:g} (row {i}, column {j}) is outside the coding "
            f"{coding!r} (values from {lo:g} to {hi:g}); pass the matching coding= "
            "('012', '01' or '-101') or recode the genotypes."
        )
    M = (M + shift) * scale  # allele counts 0..2

    n_obs = obs.sum(axis=0)
    with np.errstate(invalid="ignore"):
        col_min = np.where(obs, M, np.inf).min(axis=0)
        col_max = np.where(obs, M, -np.inf).max(axis=0)
    keep = (n_obs > 0) & (col_max > col_min)
    if not keep.any():
        raise SlamjaxInputError(
            f"grm(genotypes): all {m} markers are monomorphic (or entirely missing); "
            "a genomic relationship needs polymorphic markers."
        )
    M = M[:, keep]
    obs = obs[:, keep]
    mean = np.where(obs, M, 0.0).sum(axis=0) / obs.sum(axis=0)
    p = mean / 2.0
    Z = np.where(obs, M - mean, 0.0)
    denom = 2.0 * np.sum(p * (1.0 - p))
    G = (Z @ Z.T) / denom
    G = 0.5 * (G + G.T)
    if index is not None:
        return pd.DataFrame(G, index=index.copy(), columns=index.copy())
    return G


# ------------------------------------------------------------------ pedigree A


def _is_unknown(v: object) -> bool:
    if v is None:
        return True
    if isinstance(v, str):
        return v.strip() in ("", "0")
    try:
        if pd.isna(v):
            return True
    except (TypeError, ValueError):
        return False
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return v == 0
    return False


def _key(v: object) -> Hashable:
    """Canonical id: integral floats (ints read next to NaN) become ints; numpy scalars become Python ones."""
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.str_):
        return str(v)
    return v  # type: ignore[return-value]


def pedigree_relationship(
    ped: pd.DataFrame,
    *,
    id: str = "id",  # noqa: A002 - the column name, as in the table
    sire: str = "sire",
    dam: str = "dam",
) -> pd.DataFrame:
    """Additive (numerator) relationship matrix ``A`` by the tabular method.

    Parameters
    ----------
    ped:
        Pedigree table, one row per individual, with columns for the
        individual, its sire (father) and its dam (mother). Rows may come in
        any order: the table is sorted internally so that parents come before
        their offspring.
    id, sire, dam:
        Names of the three columns of ``ped``.

    Returns
    -------
    pandas.DataFrame
        ``A``, symmetric, indexed (rows and columns) by id: first the parents
        that appear only in the ``sire``/``dam`` columns (added as founders,
        in order of first appearance), then the ids of the table in the
        table's order.

    Notes
    -----
    * Unknown parents are given as missing values (``NaN``/``None``), ``"0"``,
      ``""`` or the number ``0``. An individual with both parents unknown is
      a founder: unrelated to other founders and not inbred.
    * With parents ``s`` and ``d``: ``A[i, j] = (A[s, j] + A[d, j]) / 2`` for
      ``j`` older than ``i`` and ``A[i, i] = 1 + A[s, d] / 2`` (``1 + F_i``);
      an unknown parent contributes 0.
    * Selfing (``sire == dam``, legitimate in plants) is allowed and gives
      ``A[i, i] = 1 + A[s, s] / 2``.
    * Integral float ids (integer ids read next to missing values) are
      matched with the integer ids.
    * Memory is O(n^2): fine for tens of thousands of individuals at most.

    Raises
    ------
    SlamjaxInputError
        If a column is missing, an id is missing or duplicated, or an
        individual is its own ancestor (a cycle in the pedigree).
    """
    if not isinstance(ped, pd.DataFrame):
        raise SlamjaxInputError(
            f"pedigree_relationship(ped): expected a pandas DataFrame, got {type(ped).__name__}; "
            "pass a table with one row per individual and columns id, sire, dam."
        )
    missing = [c for c in (id, sire, dam) if c not in ped.columns]
    if missing:
        raise SlamjaxInputError(
            f"pedigree_relationship(ped): column(s) {missing} not found (columns are {list(ped.columns)}); "
            "rename them or pass id=, sire=, dam= with the column names."
        )
    if len(ped) == 0:
        raise SlamjaxInputError("pedigree_relationship(ped): the table has no rows; pass at least one individual.")

    ids: list[Hashable] = []
    for pos, v in enumerate(ped[id].tolist()):
        if _is_unknown(v):
            raise SlamjaxInputError(
                f"pedigree_relationship(ped): row {pos} has a missing or zero id in column {id!r}; "
                "give every individual an id (0, '0' and '' mean 'unknown parent')."
            )
        ids.append(_key(v))
    seen: set = set()
    dups = []
    for k in ids:
        if k in seen:
            dups.append(k)
        seen.add(k)
    if dups:
        raise SlamjaxInputError(
            f"pedigree_relationship(ped): duplicated id(s) in column {id!r}: {dups[:5]}; "
            "keep one row per individual."
        )

    def parents(col: str) -> list[Hashable | None]:
        return [None if _is_unknown(v) else _key(v) for v in ped[col].tolist()]

    sires, dams = parents(sire), parents(dam)
    id_set = set(ids)
    founders: list[Hashable] = []
    fset: set = set()
    for s, d in zip(sires, dams):
        for par in (s, d):
            if par is not None and par not in id_set and par not in fset:
                founders.append(par)
                fset.add(par)

    order = founders + ids  # output order
    n = len(order)
    pos = {k: i for i, k in enumerate(order)}
    sire_of = [-1] * len(founders) + [pos[s] if s is not None else -1 for s in sires]
    dam_of = [-1] * len(founders) + [pos[d] if d is not None else -1 for d in dams]

    # Kahn's topological sort, stable with respect to the output order.
    children: dict[int, list[int]] = defaultdict(list)
    indeg = [0] * n
    for i in range(n):
        for par in {sire_of[i], dam_of[i]}:
            if par >= 0:
                children[par].append(i)
                indeg[i] += 1
    ready = [i for i in range(n) if indeg[i] == 0]
    heapq.heapify(ready)
    topo: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        topo.append(i)
        for c in children[i]:
            indeg[c] -= 1
            if indeg[c] == 0:
                heapq.heappush(ready, c)
    if len(topo) < n:
        stuck = [order[i] for i in range(n) if indeg[i] > 0]
        raise SlamjaxInputError(
            f"pedigree_relationship(ped): the pedigree has a cycle: individual(s) {stuck[:5]} "
            "are their own ancestors or descend from such individuals; correct their sire/dam entries."
        )

    # Tabular method on the topologically sorted pedigree (contiguous slices), then back.
    rank = np.empty(n, dtype=int)
    rank[topo] = np.arange(n)
    sp = [rank[sire_of[i]] if sire_of[i] >= 0 else -1 for i in topo]
    dp = [rank[dam_of[i]] if dam_of[i] >= 0 else -1 for i in topo]
    T = np.zeros((n, n))
    for r in range(n):
        s, d = sp[r], dp[r]
        if s >= 0 and d >= 0:
            row = 0.5 * (T[s, :r] + T[d, :r])
            T[r, r] = 1.0 + 0.5 * T[s, d]
        else:
            known = s if s >= 0 else d
            row = 0.5 * T[known, :r] if known >= 0 else 0.0
            T[r, r] = 1.0
        T[r, :r] = row
        T[:r, r] = row
    A = T[np.ix_(rank, rank)]

    idx = pd.Index(order, name=id)
    return pd.DataFrame(A, index=idx, columns=idx.copy())
