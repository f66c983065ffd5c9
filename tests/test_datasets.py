"""The bundled wheat data set."""

import numpy as np
import pandas as pd
import pytest

from slamjax.datasets._dataset import Dataset
from slamjax.datasets._wheat import load_wheat


@pytest.fixture(scope="module")
def wheat():
    return load_wheat()


def test_returns_frozen_dataset(wheat):
    assert isinstance(wheat, Dataset)
    assert wheat.name == "wheat"
    assert wheat.truth is None
    with pytest.raises(AttributeError):
        wheat.name = "other"


def test_phenotypes(wheat):
    Y = wheat.Y
    assert isinstance(Y, pd.DataFrame)
    assert Y.shape == (599, 4)
    assert list(Y.columns) == ["env1", "env2", "env4", "env5"]
    assert not Y.isna().any().any()
    assert np.isfinite(Y.to_numpy()).all()
    assert Y.index.is_unique
    assert all(np.issubdtype(t, np.floating) for t in Y.dtypes)


def test_data_has_one_row_per_line(wheat):
    assert wheat.data.index.equals(wheat.Y.index)
    assert list(wheat.data.columns) == ["line"]
    assert (wheat.data["line"].to_numpy() == wheat.Y.index.to_numpy()).all()


def test_relationship_matrix_aligned_and_symmetric(wheat):
    assert set(wheat.relmat) == {"line"}
    A = wheat.relmat["line"]
    assert A.shape == (599, 599)
    assert A.index.equals(wheat.Y.index)
    assert A.columns.equals(wheat.Y.index)
    a = A.to_numpy()
    assert not np.isnan(a).any()
    np.testing.assert_array_equal(a, a.T)
    # positive definite (smallest eigenvalue is about 0.001)
    assert np.linalg.eigvalsh(a).min() > 0


def test_markers_and_folds(wheat):
    M = wheat.markers
    assert M.shape == (599, 1279)
    assert M.index.equals(wheat.Y.index)
    assert set(np.unique(M.to_numpy())) <= {0, 1}
    folds = wheat.cv_folds
    assert folds.index.equals(wheat.Y.index)
    assert sorted(folds["fold"].unique()) == list(range(1, 11))


def test_citation(wheat):
    assert "Crossa" in wheat.citation
    assert "Genetics" in wheat.citation
    assert "Crossa" in load_wheat.__doc__


def test_loads_fresh_copies():
    a, b = load_wheat(), load_wheat()
    a.Y.iloc[0, 0] = 1e6
    assert b.Y.iloc[0, 0] != 1e6
