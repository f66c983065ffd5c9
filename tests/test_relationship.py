"""Relationship matrices: pedigree A (tabular method) and VanRaden's genomic G."""

from fractions import Fraction as Fr
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slamjax._errors import SlamjaxInputError
from slamjax.relationship import grm, pedigree_relationship

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

# ----------------------------------------------------------------- pedigree A

# 1, 2, 3 founders; 4 and 5 full sibs (1 x 2); 6 half sib of 4 and 5 (1 x 3);
# 7 from a half-sib mating (4 x 6, common grandsire 1): F_7 = 1/8;
# 8 from sire 5 and an unknown dam.
PED = pd.DataFrame(
    {
        "id": [1, 2, 3, 4, 5, 6, 7, 8],
        "sire": [None, None, None, 1, 1, 1, 4, 5],
        "dam": [None, None, None, 2, 2, 3, 6, None],
    }
)

# Expected A, worked out by hand with A[i, j] = (A[s, j] + A[d, j]) / 2 and A[i, i] = 1 + A[s, d] / 2.
_H = Fr(1, 2)
_Q = Fr(1, 4)
EXPECTED_LOWER = {
    (1, 1): 1, (2, 2): 1, (3, 3): 1, (2, 1): 0, (3, 1): 0, (3, 2): 0,
    (4, 1): _H, (4, 2): _H, (4, 3): 0, (4, 4): 1,
    (5, 1): _H, (5, 2): _H, (5, 3): 0, (5, 4): _H, (5, 5): 1,              # full sibs: 1/2
    (6, 1): _H, (6, 2): 0, (6, 3): _H, (6, 4): _Q, (6, 5): _Q, (6, 6): 1,  # half sibs: 1/4
    (7, 1): _H, (7, 2): _Q, (7, 3): _Q, (7, 4): Fr(5, 8), (7, 5): Fr(3, 8), (7, 6): Fr(5, 8),
    (7, 7): Fr(9, 8),                                                      # 1 + F, F = A46 / 2 = 1/8
    (8, 1): _Q, (8, 2): _Q, (8, 3): 0, (8, 4): _Q, (8, 5): _H, (8, 6): Fr(1, 8),
    (8, 7): Fr(3, 16), (8, 8): 1,
}


def _expected_matrix(ids):
    pos = {k: i for i, k in enumerate(ids)}
    E = np.full((len(ids), len(ids)), np.nan)
    for (i, j), v in EXPECTED_LOWER.items():
        E[pos[i], pos[j]] = E[pos[j], pos[i]] = float(v)
    assert not np.isnan(E).any()
    return E


def test_pedigree_by_hand():
    A = pedigree_relationship(PED)
    assert isinstance(A, pd.DataFrame)
    assert list(A.index) == list(range(1, 9))
    assert A.index.equals(A.columns)
    assert A.index.name == "id"
    np.testing.assert_allclose(A.to_numpy(), _expected_matrix(list(range(1, 9))), rtol=0, atol=1e-15)
    assert np.linalg.eigvalsh(A.to_numpy()).min() > 0


def test_offspring_before_parents_is_sorted_internally():
    shuffled = PED.iloc[[7, 6, 4, 5, 3, 2, 0, 1]].reset_index(drop=True)
    A = pedigree_relationship(shuffled)
    # returned in the table's order, values as for the sorted pedigree
    assert list(A.index) == [8, 7, 5, 6, 4, 3, 1, 2]
    np.testing.assert_allclose(A.to_numpy(), _expected_matrix(list(A.index)), atol=1e-15)


def test_parents_missing_from_table_become_founders_first():
    # drop the founders' rows: they are added, in order of first appearance, before the table's ids
    A = pedigree_relationship(PED.iloc[[6, 3, 4, 5, 7]])  # ids 7, 4, 5, 6, 8
    assert list(A.index) == [1, 2, 3, 7, 4, 5, 6, 8]
    np.testing.assert_allclose(A.to_numpy(), _expected_matrix(list(A.index)), atol=1e-15)


def test_unknown_parent_codes_and_column_names():
    ped = pd.DataFrame(
        {
            "animal": ["a", "b", "c", "d", "e"],
            "father": ["0", "", "a", "a", "c"],
            "mother": [None, np.nan, "b", "0", "d"],
        }
    )
    A = pedigree_relationship(ped, id="animal", sire="father", dam="mother")
    assert list(A.index) == ["a", "b", "c", "d", "e"]
    assert A.index.name == "animal"
    assert A.loc["c", "d"] == pytest.approx(0.25)  # half sibs
    assert A.loc["e", "e"] == pytest.approx(1.125)  # half-sib mating
    # integer ids with 0 for unknown and float parents (read next to NaN) are matched
    ped2 = pd.DataFrame({"id": [1, 2, 3], "sire": [0, 0, 1.0], "dam": [np.nan, 0, 2.0]})
    A2 = pedigree_relationship(ped2)
    assert list(A2.index) == [1, 2, 3]
    assert A2.loc[3, 1] == pytest.approx(0.5)


def test_selfing_is_allowed():
    ped = pd.DataFrame({"id": ["a", "b", "c"], "sire": [None, "a", "b"], "dam": [None, "a", "b"]})
    A = pedigree_relationship(ped)
    # A_bb = 1 + A_aa / 2 = 3/2; A_cc = 1 + A_bb / 2 = 7/4; A_bc = (A_bb + A_bb) / 2
    assert A.loc["b", "b"] == pytest.approx(1.5)
    assert A.loc["c", "c"] == pytest.approx(1.75)
    assert A.loc["b", "c"] == pytest.approx(1.5)
    assert A.loc["a", "b"] == pytest.approx(1.0)


def test_matches_random_pedigree_generator_structure():
    rng = np.random.default_rng(1)
    n, n0 = 60, 10
    sires = [None] * n0 + [int(rng.integers(0, i)) for i in range(n0, n)]
    dams = [None] * n0 + [int(rng.integers(0, i)) for i in range(n0, n)]
    ped = pd.DataFrame({"id": range(n), "sire": sires, "dam": dams})
    A = pedigree_relationship(ped.assign(id=ped["id"] + 100, sire=ped["sire"] + 100, dam=ped["dam"] + 100))
    a = A.to_numpy()
    np.testing.assert_array_equal(a, a.T)
    assert np.linalg.eigvalsh(a).min() > 0
    # recursive definition holds on every row
    for i in range(n0, n):
        s, d = sires[i], dams[i]
        assert a[i, i] == pytest.approx(1 + 0.5 * a[s, d])
        others = list(range(i))
        np.testing.assert_allclose(a[i, others], 0.5 * (a[s, others] + a[d, others]))


def test_pedigree_errors():
    with pytest.raises(SlamjaxInputError, match="duplicated id"):
        pedigree_relationship(pd.DataFrame({"id": [1, 2, 2], "sire": [None] * 3, "dam": [None] * 3}))
    cyc = pd.DataFrame({"id": ["a", "b", "c"], "sire": ["c", "a", "b"], "dam": [None, None, None]})
    with pytest.raises(SlamjaxInputError, match="cycle"):
        pedigree_relationship(cyc)
    with pytest.raises(SlamjaxInputError, match="cycle"):
        pedigree_relationship(pd.DataFrame({"id": ["a"], "sire": ["a"], "dam": [None]}))
    with pytest.raises(SlamjaxInputError, match="column"):
        pedigree_relationship(pd.DataFrame({"animal": [1], "sire": [0], "dam": [0]}))
    with pytest.raises(SlamjaxInputError, match="missing or zero id"):
        pedigree_relationship(pd.DataFrame({"id": ["a", None], "sire": [None] * 2, "dam": [None] * 2}))
    with pytest.raises(SlamjaxInputError, match="DataFrame"):
        pedigree_relationship(np.zeros((3, 3)))
    with pytest.raises(SlamjaxInputError, match="no rows"):
        pedigree_relationship(pd.DataFrame({"id": [], "sire": [], "dam": []}))
    assert issubclass(SlamjaxInputError, ValueError)


# ----------------------------------------------------------------------- G


def _vanraden(M):
    p = M.mean(axis=0) / 2
    Z = M - 2 * p
    return Z @ Z.T / (2 * np.sum(p * (1 - p)))


@pytest.fixture
def small_M():
    rng = np.random.default_rng(0)
    M = rng.integers(0, 3, size=(7, 40)).astype(float)
    M[:, 0] = [0, 1, 2, 0, 1, 2, 0]
    return M


def test_grm_matches_direct_formula(small_M):
    G = grm(small_M)
    assert isinstance(G, np.ndarray)
    np.testing.assert_allclose(G, _vanraden(small_M), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(G, G.T)
    # integer input works too
    np.testing.assert_allclose(grm(small_M.astype(np.int8)), G)


def test_grm_imputes_missing_with_marker_mean(small_M):
    M = small_M.copy()
    M[0, 3] = M[4, 3] = M[2, 10] = np.nan
    filled = np.where(np.isnan(M), np.nanmean(M, axis=0), M)
    np.testing.assert_allclose(grm(M), _vanraden(filled), rtol=1e-12, atol=1e-12)


def test_grm_drops_monomorphic_and_empty_markers(small_M):
    M = np.column_stack([small_M, np.full(7, 2.0), np.zeros(7), np.full(7, np.nan), [1, np.nan, 1, 1, 1, 1, 1]])
    np.testing.assert_allclose(grm(M), grm(small_M), rtol=1e-12)
    with pytest.raises(SlamjaxInputError, match="monomorphic"):
        grm(np.column_stack([np.ones(5), np.full(5, 2.0)]))


def test_grm_dataframe_in_and_out(small_M):
    ids = pd.Index([f"ind{i}" for i in range(7)], name="line")
    df = pd.DataFrame(small_M, index=ids, columns=[f"m{j}" for j in range(small_M.shape[1])])
    G = grm(df)
    assert isinstance(G, pd.DataFrame)
    assert G.index.equals(ids) and G.columns.equals(ids)
    assert G.index.name == "line"
    np.testing.assert_allclose(G.to_numpy(), grm(small_M))
    # nullable integer columns with <NA> are numeric and treated as missing
    df2 = df.astype("Int64")
    df2.iloc[0, 0] = pd.NA
    M2 = small_M.copy()
    M2[0, 0] = np.nan
    np.testing.assert_allclose(grm(df2).to_numpy(), grm(M2))


def test_grm_codings(small_M):
    rng = np.random.default_rng(3)
    B = rng.integers(0, 2, size=(9, 30)).astype(float)
    np.testing.assert_allclose(grm(B, coding="01"), _vanraden(2 * B), rtol=1e-12)
    # inbred lines: diagonal averages 2 (1 + F, F = 1) when no genotype is missing
    assert np.diag(grm(B, coding="01")).mean() == pytest.approx(2.0)
    np.testing.assert_allclose(grm(small_M - 1, coding="-101"), grm(small_M), rtol=1e-12)
    # dosages between the codes are accepted
    grm(small_M * 0.9 + 0.05)


def test_grm_errors(small_M):
    with pytest.raises(SlamjaxInputError, match="outside the coding"):
        grm(small_M, coding="01")
    with pytest.raises(SlamjaxInputError, match="outside the coding"):
        grm(np.where(small_M == 2, 3, small_M))
    with pytest.raises(SlamjaxInputError, match="outside the coding"):
        grm(small_M - 1)
    with pytest.raises(SlamjaxInputError, match="not numeric"):
        grm(pd.DataFrame({"a": ["L", "C", "L"], "b": [0, 1, 2]}))
    with pytest.raises(SlamjaxInputError, match="not numeric"):
        grm(np.array([["0", "1"], ["1", "2"]]))
    with pytest.raises(SlamjaxInputError, match="at least 2"):
        grm(small_M[:1])
    with pytest.raises(SlamjaxInputError, match="2-D"):
        grm(small_M[0])
    with pytest.raises(SlamjaxInputError, match="coding"):
        grm(small_M, coding="0123")
    with pytest.raises(SlamjaxInputError, match="infinite"):
        grm(np.where(small_M == 2, np.inf, small_M))


# ----------------------------------------------------------------- real data


def _offdiag_corr(a, b):
    iu = np.triu_indices(a.shape[0], 1)
    return np.corrcoef(a[iu], b[iu])[0, 1]


def test_wheat_grm_psd_and_correlates_with_pedigree():
    from slamjax.datasets._wheat import load_wheat

    w = load_wheat()
    G = grm(w.markers, coding="01")
    assert G.index.equals(w.Y.index)
    g = G.to_numpy()
    eig = np.linalg.eigvalsh(g)
    assert eig.min() > -1e-10 * eig.max()
    assert np.diag(g).mean() == pytest.approx(2.0)  # no missing DArT genotypes: exactly 2
    r = _offdiag_corr(g, w.relmat["line"].to_numpy())
    # measured: 0.248 (the pedigree A and the DArT markers agree only moderately)
    assert 0.2 < r < 0.3


@pytest.mark.skipif(not (SHARED / "mice").is_dir(), reason="../shared/data not available")
def test_mice_grm_correlates_with_pedigree():
    M = np.load(SHARED / "mice" / "snps.npz")["genotypes"]
    A = pd.read_csv(SHARED / "mice" / "pedigree_relationship.csv.gz", index_col=0).to_numpy()
    r = _offdiag_corr(grm(M), A)
    assert r > 0.4  # measured: 0.456
