"""The bundled mice, grav2 and bottomly data sets."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slamjax.datasets._bottomly import BOTTOMLY_CITATION, load_bottomly, load_bottomly_voom
from slamjax.datasets._dataset import Dataset
from slamjax.datasets._grav2 import GRAV2_CITATION, load_grav2
from slamjax.datasets._mice import MICE_CITATION, MICE_TRAITS, load_mice
from slamjax.relationship import grm

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not available")


def _check_common(d: Dataset, name: str):
    assert isinstance(d, Dataset)
    assert d.name == name
    assert d.truth is None
    assert d.cv_folds is None
    assert d.Y.index.is_unique
    assert d.data.index.equals(d.Y.index)
    for key, K in d.relmat.items():
        assert key in d.data.columns
        assert (d.data[key].to_numpy() == d.Y.index.to_numpy()).all()
        assert K.index.equals(d.Y.index) and K.columns.equals(d.Y.index)
        k = K.to_numpy()
        assert not np.isnan(k).any()
        np.testing.assert_allclose(k, k.T, atol=1e-12)
    if d.markers is not None:
        assert d.markers.index.equals(d.Y.index)
    with pytest.raises(AttributeError):
        d.name = "other"
    assert name in repr(d)


# ------------------------------------------------------------------------ mice


@pytest.fixture(scope="module")
def mice():
    return load_mice()


def test_mice_shapes_and_traits(mice):
    _check_common(mice, "mice")
    Y = mice.Y
    assert Y.shape == (1814, 20)
    assert list(Y.columns) == list(MICE_TRAITS)
    assert Y.index.name == "mouse"
    assert all(np.issubdtype(t, np.floating) for t in Y.dtypes)
    assert "Obesity.BMI" in Y.columns and "Biochem.Glucose" in Y.columns
    # covariates, dates and the duplicated body weight are not traits
    for c in ["GENDER", "cage", "Litter", "Biochem.EndNormalBW", "Biochem.Age", "Obesity.Date.StudyDay"]:
        assert c not in Y.columns


def test_mice_missing_values(mice):
    na = mice.Y.isna().sum()
    assert na["Biochem.Potassium"] == 1661
    assert na["Biochem.Creatinine"] == 654
    assert na[["Obesity.BMI", "Obesity.BodyLength", "Obesity.EndNormalBW"]].sum() == 0
    assert (na[[t for t in MICE_TRAITS if t.startswith("Biochem.")]] > 0).all()
    assert np.isfinite(mice.Y.to_numpy()[~mice.Y.isna().to_numpy()]).all()


def test_mice_covariates(mice):
    data = mice.data
    for c in ["mouse", "GENDER", "season", "cage", "Litter", "CoatColour", "CageDensity", "StudyDay"]:
        assert c in data.columns
    assert isinstance(data["GENDER"].dtype, pd.CategoricalDtype)
    assert list(data["GENDER"].cat.categories) == ["F", "M"]
    assert data["GENDER"].value_counts().to_dict() == {"M": 934, "F": 880}
    assert isinstance(data["season"].dtype, pd.CategoricalDtype)
    assert set(data["season"].cat.categories) == {"winter", "spring", "summer", "autumn"}
    assert isinstance(data["cage"].dtype, pd.CategoricalDtype)
    assert data["cage"].nunique() == 523
    assert isinstance(data["Litter"].dtype, pd.CategoricalDtype)
    assert all(isinstance(v, str) for v in data["Litter"].cat.categories)
    assert not data[["GENDER", "season", "cage", "Litter", "CageDensity"]].isna().any().any()
    assert data["Biochem.Season"].isna().sum() == 289


def test_mice_relationship_and_markers(mice):
    A = mice.relmat["mouse"]
    assert set(mice.relmat) == {"mouse"}
    assert A.shape == (1814, 1814)
    np.testing.assert_allclose(np.diag(A.to_numpy()), 1.0)
    assert np.linalg.eigvalsh(A.to_numpy()).min() > 0.4
    M = mice.markers
    assert M.shape == (1814, 10346)
    assert (M.dtypes == np.int8).all()
    assert set(np.unique(M.to_numpy())) == {0, 1, 2}
    assert M.columns[0] == "rs3683945_G"
    assert load_mice(markers=False).markers is None


@needs_shared
def test_mice_matches_shared_copy(mice):
    raw = pd.read_csv(SHARED / "mice" / "phenotypes.csv", index_col="mouse")
    pd.testing.assert_frame_equal(
        mice.Y, raw[list(MICE_TRAITS)].rename_axis(index="mouse", columns="trait"), check_index_type=False
    )
    A = pd.read_csv(SHARED / "mice" / "pedigree_relationship.csv.gz", index_col=0)
    np.testing.assert_array_equal(mice.relmat["mouse"].to_numpy(), A.loc[mice.Y.index, mice.Y.index].to_numpy())
    geno = np.load(SHARED / "mice" / "snps.npz")["genotypes"]
    np.testing.assert_array_equal(mice.markers.to_numpy(), geno)  # same mouse order as phenotypes.csv


def test_mice_citation(mice):
    assert mice.citation == MICE_CITATION
    assert "Valdar" in mice.citation and "Nature Genetics 38" in mice.citation and "879" in mice.citation
    assert "BGLR" in mice.citation and "GPL-3" in mice.citation
    assert "Valdar" in load_mice.__doc__


# ----------------------------------------------------------------------- grav2


@pytest.fixture(scope="module")
def grav2():
    return load_grav2()


def test_grav2_shapes(grav2):
    _check_common(grav2, "grav2")
    Y = grav2.Y
    assert Y.shape == (162, 241)
    assert Y.columns[0] == "T0" and Y.columns[-1] == "T480"
    assert not Y.isna().any().any()
    t = Y.attrs["time_hours"]
    assert t.shape == (241,)
    assert t[0] == 0 and t[-1] == pytest.approx(8.0)
    np.testing.assert_allclose(np.diff(t), 2 / 60)
    assert list(grav2.data.columns) == ["id"]
    assert list(Y.index[:3]) == ["1", "2", "3"]


def test_grav2_markers_and_grm(grav2):
    M = grav2.markers
    assert M.shape == (162, 234)
    vals = M.to_numpy()
    assert set(np.unique(vals[~np.isnan(vals)])) == {0.0, 1.0}
    assert np.isnan(vals).sum() == 545
    G = grav2.relmat["id"]
    assert set(grav2.relmat) == {"id"}
    assert G.shape == (162, 162)
    np.testing.assert_allclose(G.to_numpy(), grm(M, coding="01").to_numpy())
    eig = np.linalg.eigvalsh(G.to_numpy())
    assert eig.min() > -1e-10 * eig.max()
    assert 1.9 < np.diag(G.to_numpy()).mean() < 2.0  # inbred lines; imputed genotypes shrink it below 2


@needs_shared
def test_grav2_marker_coding_matches_shared(grav2):
    geno = pd.read_csv(SHARED / "grav2" / "geno.csv.gz", index_col="id", dtype=str)
    assert (geno.to_numpy() == "C").sum() == (grav2.markers.to_numpy() == 1).sum()
    assert (geno.to_numpy() == "L").sum() == (grav2.markers.to_numpy() == 0).sum()


def test_grav2_citation(grav2):
    assert grav2.citation == GRAV2_CITATION
    assert "Moore" in grav2.citation and "Genetics 195" in grav2.citation and "qtl2" in grav2.citation
    assert "Moore" in load_grav2.__doc__


# -------------------------------------------------------------------- bottomly


@pytest.fixture(scope="module")
def bottomly():
    return load_bottomly()


def test_bottomly_counts(bottomly):
    _check_common(bottomly, "bottomly")
    Y = bottomly.Y
    assert Y.shape == (21, 36536)
    assert (Y.dtypes == np.int64).all()
    assert (Y.to_numpy() >= 0).all()
    assert Y.index[0] == "SRX033480" and Y.columns[0] == "ENSMUSG00000000001"
    assert Y.iloc[0, 0] == 369
    assert (Y.sum(axis=0) == 0).sum() == 22604
    assert bottomly.relmat == {}
    assert bottomly.markers is None


def test_bottomly_samples(bottomly):
    data = bottomly.data
    assert list(data.columns) == ["sample", "strain", "experiment.number", "lane"]
    for c in ["strain", "experiment.number", "lane"]:
        assert isinstance(data[c].dtype, pd.CategoricalDtype)
    assert data["strain"].value_counts().to_dict() == {"DBA/2J": 11, "C57BL/6J": 10}
    assert list(data["experiment.number"].cat.categories) == ["4", "6", "7"]
    assert not data.isna().any().any()


def test_bottomly_voom_reference(bottomly):
    logcpm, weights = load_bottomly_voom()
    assert logcpm.shape == (21, 10228)  # samples x genes (10228 genes x 21 samples in the files)
    assert weights.shape == (21, 10228)
    assert logcpm.index.equals(bottomly.Y.index) and weights.index.equals(bottomly.Y.index)
    assert logcpm.columns.equals(weights.columns)
    assert logcpm.columns.isin(bottomly.Y.columns).all()
    assert (weights.to_numpy() > 0).all()
    # the voom filter: cpm > 1 in at least 3 samples
    Y = bottomly.Y
    cpm = Y.div(Y.sum(axis=1), axis=0) * 1e6
    assert list(Y.columns[(cpm > 1).sum(axis=0) >= 3]) == list(logcpm.columns)
    # E = log2((y + 0.5) / (lib + 1) * 1e6), lib summed over the kept genes
    y = Y[logcpm.columns]
    lib = y.sum(axis=1)
    E = np.log2((y + 0.5).div(lib + 1, axis=0) * 1e6)
    np.testing.assert_allclose(E.to_numpy(), logcpm.to_numpy(), atol=1e-10)


def test_bottomly_citation(bottomly):
    assert bottomly.citation == BOTTOMLY_CITATION
    assert "Bottomly" in bottomly.citation and "e17820" in bottomly.citation
    assert "ReCount" in bottomly.citation
    assert "Bottomly" in load_bottomly.__doc__ and "voom" in load_bottomly_voom.__doc__
