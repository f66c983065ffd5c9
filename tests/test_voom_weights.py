"""The package's own voom weights (slamjax/observation/_voom_weights.py) against R and limma.

* ``lowess`` against R's ``stats::lowess`` values stored in tests/data/lowess_reference.json (made
  once by tests/data/make_lowess_reference.R; R is not needed here);
* ``voom_weights`` on the Bottomly counts against limma 3.54.1's ``voom()`` output in shared/data;
* bad input, and the orientation of DataFrame output. No JAX.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slamjax._errors import SlamjaxInputError
from slamjax.observation._voom_weights import VoomWeights, lowess, voom_weights

HERE = Path(__file__).resolve().parent
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not available")

# ------------------------------------------------------------------------------------ lowess

_REFERENCE = json.loads((HERE / "data" / "lowess_reference.json").read_text())


@pytest.mark.parametrize("case", _REFERENCE["cases"], ids=lambda c: c["name"])
def test_lowess_matches_r(case):
    x, y = np.array(case["x"]), np.array(case["y"])
    lx, ly = lowess(x, y, f=case["f"], iter=case["iter"])  # delta: R's default 0.01 * range
    rx, ry = np.array(case["lowess_x"]), np.array(case["lowess_y"])
    np.testing.assert_array_equal(lx, rx)
    rel = np.max(np.abs(ly - ry) / np.abs(ry))
    print(f"\nlowess {case['name']}: max relative error vs R = {rel:.3g}")
    # measured: 0 in all four cases (bit-identical to R 4.2.2's lowess)
    assert rel <= 1e-10


def test_lowess_reference_provenance():
    assert "R version" in _REFERENCE["made_by"]
    names = [c["name"] for c in _REFERENCE["cases"]]
    assert {"smooth_f0.5", "smooth_f2/3", "ties_f0.5", "large_f0.5"} <= set(names)
    ties = next(c for c in _REFERENCE["cases"] if c["name"] == "ties_f0.5")
    assert len(np.unique(ties["x"])) < len(ties["x"])


# ---------------------------------------------------------------------------------- bottomly


@pytest.fixture(scope="module")
def bottomly():
    d = SHARED / "bottomly"
    counts = pd.read_csv(d / "counts.tsv.gz", sep="\t", index_col=0)  # genes x samples
    samples = pd.read_csv(d / "samples.tsv", sep="\t", index_col=0, dtype={"strain": str})
    logcpm = pd.read_csv(d / "voom_logcpm.csv.gz", index_col=0)  # genes x samples
    weights = pd.read_csv(d / "voom_weights.csv.gz", index_col=0)
    Y = counts.T.loc[samples.index]  # individuals x genes, the package's orientation
    return Y, samples, logcpm.T.loc[samples.index], weights.T.loc[samples.index]


@needs_shared
def test_bottomly_matches_limma(bottomly):
    Y, samples, logcpm_limma, weights_limma = bottomly
    # the filter: cpm > 1 in >= 3 samples, cpm from the library sizes of ALL genes
    cpm = Y.div(Y.sum(axis=1), axis=0) * 1e6
    kept = Y.loc[:, (cpm > 1).sum(axis=0) >= 3]
    assert kept.shape == (21, 10228)
    assert list(kept.columns) == list(logcpm_limma.columns)
    design = np.column_stack([np.ones(len(samples)), (samples["strain"] == "DBA/2J").to_numpy(float)])

    # Library sizes: limma's default, the column sums of the counts voom was given (the 10228
    # FILTERED genes), reproduces the stored logcpm (max abs difference 5e-14); the sums over all
    # 36536 genes do not (max abs difference 8.7e-4). So lib_size is left at its default here.
    v = voom_weights(kept, design)
    assert isinstance(v, VoomWeights)
    np.testing.assert_allclose(v.lib_size.to_numpy(), kept.sum(axis=1).to_numpy())
    dl = np.max(np.abs(v.logcpm.to_numpy() - logcpm_limma.to_numpy()))
    rel = np.abs(v.weights.to_numpy() - weights_limma.to_numpy()) / weights_limma.to_numpy()
    med, p99 = np.median(rel), np.percentile(rel, 99)
    print(
        f"\nbottomly voom vs limma: max |logcpm diff| = {dl:.3g}; weights relative diff: "
        f"median {med:.3g}, 99th percentile {p99:.3g}, max {rel.max():.3g}"
    )
    # measured: max |logcpm diff| 5.0e-14; weights relative diff median 2.8e-15, 99th percentile
    # 4.0e-14, max 1.8e-13 (the stored files have 15 significant digits)
    assert dl < 1e-8
    assert med < 0.01 and p99 < 0.05
    assert rel.max() < 1e-9  # the port is exact; this guards against drifting from limma
    assert np.isfinite(v.trend_y).all() and v.trend_x.shape == (10228,)


# --------------------------------------------------------------------------- small synthetic


def _small(seed: int = 0, n: int = 8, g: int = 40):
    rng = np.random.default_rng(seed)
    mu = rng.gamma(2.0, 50.0, size=g)
    counts = rng.poisson(mu[None, :] * rng.uniform(0.5, 1.5, size=(n, 1))).astype(float)
    design = np.column_stack([np.ones(n), np.arange(n) % 2])
    return counts, design


def test_numpy_in_numpy_out_and_all_zero_gene():
    counts, design = _small()
    counts[:, 3] = 0.0  # an all-zero gene: weights, but left out of the trend (as limma)
    v = voom_weights(counts, design)
    assert isinstance(v.logcpm, np.ndarray) and isinstance(v.weights, np.ndarray)
    assert v.logcpm.shape == v.weights.shape == counts.shape
    assert np.isfinite(v.weights).all() and (v.weights > 0).all() and np.isfinite(v.logcpm).all()
    assert v.trend_x.shape == (counts.shape[1] - 1,)
    np.testing.assert_allclose(v.lib_size, counts.sum(axis=1))


def test_norm_factors_multiply_lib_size():
    counts, design = _small(1)
    nf = np.linspace(0.8, 1.2, counts.shape[0])
    v = voom_weights(counts, design, norm_factors=nf)
    np.testing.assert_allclose(v.lib_size, counts.sum(axis=1) * nf)
    lib = np.full(counts.shape[0], 1e4)
    np.testing.assert_allclose(voom_weights(counts, design, lib_size=lib, norm_factors=nf).lib_size, lib * nf)


def test_dataframe_keeps_index_and_columns():
    counts, design = _small(2)
    idx = pd.Index([f"ind{i}" for i in range(counts.shape[0])], name="individual")
    cols = pd.Index([f"gene{j}" for j in range(counts.shape[1])], name="gene")
    frame = pd.DataFrame(counts.astype(int), index=idx, columns=cols)
    v = voom_weights(frame, pd.DataFrame(design, index=idx))
    for out in (v.logcpm, v.weights):
        assert isinstance(out, pd.DataFrame)
        assert out.index.equals(idx) and out.columns.equals(cols)
    assert isinstance(v.lib_size, pd.Series) and v.lib_size.index.equals(idx)
    w = voom_weights(counts, design)
    np.testing.assert_allclose(v.weights.to_numpy(), w.weights, rtol=1e-12)  # BLAS order may differ


def _bad_cases():
    counts, design = _small(3)
    n = counts.shape[0]
    neg = counts.copy()
    neg[0, 0] = -1
    frac = counts.copy()
    frac[1, 2] = 2.5
    nan = counts.copy()
    nan[2, 1] = np.nan
    inf = counts.copy()
    inf[2, 1] = np.inf
    deficient = np.column_stack([design, 2 * design[:, 1]])
    empty_row = counts.copy()
    empty_row[0] = 0
    return [
        ("negative", dict(counts=neg, design=design), "counts"),
        ("non-integer", dict(counts=frac, design=design), "counts"),
        ("nan", dict(counts=nan, design=design), "counts"),
        ("inf", dict(counts=inf, design=design), "counts"),
        ("genes x samples", dict(counts=counts.T, design=design), "design"),
        ("design rows", dict(counts=counts, design=design[:-1]), "design"),
        ("one gene", dict(counts=counts[:, :1], design=design), "counts"),
        ("1-d counts", dict(counts=counts[:, 0], design=design), "counts"),
        ("rank deficient", dict(counts=counts, design=deficient), "design"),
        ("too few rows", dict(counts=counts[:2], design=design[:2]), "design"),
        ("lib_size zero", dict(counts=counts, design=design, lib_size=np.r_[0.0, np.ones(n - 1)]), "lib_size"),
        ("lib_size negative", dict(counts=counts, design=design, lib_size=-np.ones(n)), "lib_size"),
        ("lib_size length", dict(counts=counts, design=design, lib_size=np.ones(n + 1)), "lib_size"),
        ("empty individual", dict(counts=empty_row, design=design), "lib_size"),
        ("norm_factors zero", dict(counts=counts, design=design, norm_factors=np.zeros(n)), "norm_factors"),
        ("norm_factors nan", dict(counts=counts, design=design, norm_factors=np.full(n, np.nan)), "norm_factors"),
    ]


@pytest.mark.parametrize("name,kwargs,argument", _bad_cases(), ids=[c[0] for c in _bad_cases()])
def test_bad_input_raises(name, kwargs, argument):
    with pytest.raises(SlamjaxInputError, match=argument):
        voom_weights(**kwargs)


def test_input_error_is_value_error():
    assert issubclass(SlamjaxInputError, ValueError)
