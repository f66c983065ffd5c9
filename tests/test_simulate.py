"""The simulator: truth consistent with the model, relationship matrices with the right structure."""

from __future__ import annotations

import numpy as np
import pytest

import slamjax as sj
from slamjax.datasets import half_sib_relationship, random_pedigree_relationship


def test_random_pedigree_relationship():
    A = random_pedigree_relationship(60, generations=3, seed=2)
    np.testing.assert_allclose(A, A.T)
    np.testing.assert_allclose(A[:20, :20], np.eye(20))  # unrelated, non-inbred founders
    assert np.linalg.eigvalsh(A).min() > 0
    # generation 1 has unrelated parents: each child relates 1/2 to exactly two founders
    child = A[20, :20]
    assert sorted(child[child > 0]) == [0.5, 0.5]
    assert A[20, 20] == 1.0
    # later generations can be inbred and related through both parents
    assert A.diagonal().max() >= 1.0


def test_half_sib_relationship():
    A = half_sib_relationship(3, 4)
    assert A.shape == (12, 12)
    assert A[0, 1] == 0.25 and A[0, 4] == 0.0 and A[0, 0] == 1.0


def test_simulate_truth_is_consistent():
    ds = sj.datasets.simulate(n=100, p=12, k=3, seed=4, fraction_missing=0.3)
    t = ds.truth
    assert ds.Y.shape == (100, 12)
    assert 0.2 < ds.Y.isna().to_numpy().mean() < 0.4
    np.testing.assert_allclose(t["P"], t["G"] + t["R"])
    np.testing.assert_allclose(t["h2"], np.diag(t["G"]) / np.diag(t["P"]))
    np.testing.assert_allclose(
        t["G"], t["Lambda"].T @ np.diag(t["F_h2"]) @ t["Lambda"] + np.diag(t["resid_h2"] / t["tot_Eta_prec"])
    )
    # data variance matches the implied total covariance (sampling error of 100 rows)
    complete = sj.datasets.simulate(n=2000, p=5, k=2, seed=5, K=np.eye(2000))
    np.testing.assert_allclose(complete.Y.var().to_numpy(), np.diag(complete.truth["P"]), rtol=0.15)
    with pytest.raises(sj.SlamjaxInputError, match="fraction_missing"):
        sj.datasets.simulate(n=10, p=3, k=1, fraction_missing=1.0)
