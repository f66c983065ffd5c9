"""sj.plot: every plot renders from a small fitted run and saves a PNG; bad arguments are refused."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

import slamjax as sj

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run():
    ds = sj.datasets.load_wheat()
    model = sj.Model(Y=ds.Y, data=ds.data, formula="~ 1 + (1|line)", relmat=ds.relmat, n_factors=2)
    return sj.sample(model, num_warmup=100, num_samples=100, num_chains=2, seed=1, progress=False)


@pytest.fixture(scope="module")
def run_two_effects():
    ds = sj.datasets.simulate(n=100, p=6, k=2, seed=0, n_groups=10)
    model = sj.Model(
        Y=ds.Y, data=ds.data, formula="~ 1 + (1|id) + (1|group)", relmat={"id": ds.relmat["id"]}, n_factors=2
    )
    return sj.sample(model, num_warmup=100, num_samples=100, num_chains=2, seed=2, progress=False)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _check_png(path):
    assert path.exists()
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 5000


def _unit_diagonal_images(fig, n_expected):
    images = [im for ax in fig.axes for im in ax.images]
    assert len(images) == n_expected
    for image in images:
        corr = np.asarray(image.get_array())
        assert corr.shape[0] == corr.shape[1]
        np.testing.assert_allclose(np.diag(corr), 1.0)
        assert np.all(np.abs(corr) <= 1.0)
        np.testing.assert_allclose(corr, corr.T, atol=1e-12)
        assert image.get_clim() == (-1.0, 1.0)


def test_trace(run, tmp_path):
    path = tmp_path / "trace.png"
    fig = sj.plot.trace(run, save=path)
    assert isinstance(fig, matplotlib.figure.Figure)
    _check_png(path)
    assert len(fig.axes) == 2 * len(run.model.trait_names)  # trace + rank per trait
    trace_lines = fig.axes[0].get_lines()
    assert len(trace_lines) == run.settings["num_chains"]
    np.testing.assert_allclose(trace_lines[0].get_ydata(), run.draws["h2"][0, :, 0])
    fig = sj.plot.trace(run, var_names=["h2", "G"], max_panels=5)
    assert len(fig.axes) == 10 and "of 14 panels" in fig.get_suptitle()  # 4 h2 + 10 upper-triangle G


def test_h2(run, tmp_path):
    path = tmp_path / "h2.pdf"
    fig = sj.plot.h2(run, ci_prob=0.8, save=tmp_path / "h2.png")
    _check_png(tmp_path / "h2.png")
    sj.plot.h2(run, save=path)
    assert path.read_bytes()[:4] == b"%PDF"
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert sorted(labels) == sorted(run.model.trait_names)
    means = run.posterior_mean("h2")[labels].values
    assert np.all(np.diff(means) <= 1e-12)  # largest on top
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), means)


def test_loadings(run, tmp_path):
    path = tmp_path / "loadings.png"
    fig = sj.plot.loadings(run, save=path)
    _check_png(path)
    order = sj.plot.trait_order(run)
    assert sorted(order) == sorted(run.model.trait_names) and len(order) == len(set(order))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == order
    Lambda = run.posterior_mean("Lambda")
    shown = np.asarray(ax.images[0].get_array())
    np.testing.assert_allclose(shown, Lambda[order].values)
    low, high = ax.images[0].get_clim()
    assert low == -high  # centred at 0
    fig = sj.plot.loadings(run, order="none", chain=1)
    np.testing.assert_allclose(np.asarray(fig.axes[0].images[0].get_array()), run.aligned_loadings().values[1].mean(axis=0))


def test_correlations(run, tmp_path):
    path = tmp_path / "correlations.png"
    fig = sj.plot.correlations(run, kind="both", save=path)
    _check_png(path)
    _unit_diagonal_images(fig, 2)
    order = sj.plot.trait_order(run, by="genetic")
    for ax in fig.axes[:2]:
        assert [t.get_text() for t in ax.get_xticklabels()] == order
    G = run.posterior_mean("G").loc[order, order].values
    sd = np.sqrt(np.diag(G))
    np.testing.assert_allclose(np.asarray(fig.axes[0].images[0].get_array()), G / np.outer(sd, sd), atol=1e-12)
    _unit_diagonal_images(sj.plot.correlations(run, kind="residual", order="loadings"), 1)


def test_predicted_vs_observed(run, tmp_path):
    path = tmp_path / "pvo.png"
    fig = sj.plot.predicted_vs_observed(run, save=path)
    _check_png(path)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == len(run.model.trait_names)
    Y = run.model.inputs.Y
    fitted = run.posterior_mean("Eta_mean").values
    r = np.corrcoef(Y[:, 0], fitted[:, 0])[0, 1]
    assert f"r = {r:.2f}" in visible[0].get_title()
    fig = sj.plot.predicted_vs_observed(run, traits=["env4"])
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 1


def test_bad_arguments(run):
    bad = [
        lambda: sj.plot.trace(run, var_names=["h3"]),
        lambda: sj.plot.trace(run, var_names="U"),
        lambda: sj.plot.trace(run, max_panels=0),
        lambda: sj.plot.h2(run, ci_prob=1.5),
        lambda: sj.plot.loadings(run, order="alphabetical"),
        lambda: sj.plot.loadings(run, order=["env1", "env2"]),
        lambda: sj.plot.loadings(run, chain=2),
        lambda: sj.plot.correlations(run, kind="phenotypic"),
        lambda: sj.plot.correlations(run, effect="cage"),
        lambda: sj.plot.predicted_vs_observed(run, traits=["env3"]),
        lambda: sj.plot.trait_order(run, by="size"),
        lambda: sj.plot.h2(run.model),
    ]
    for call in bad:
        with pytest.raises(sj.SlamjaxInputError):
            call()
    with pytest.raises(sj.SlamjaxInputError, match=r"unknown var_names \['h3'\].*choose from"):
        sj.plot.trace(run, var_names=["h3"])
    with pytest.raises(sj.SlamjaxInputError, match=r"unknown kind 'phenotypic'.*'both'"):
        sj.plot.correlations(run, kind="phenotypic")


def test_several_random_effects(run_two_effects, tmp_path):
    run = run_two_effects
    fig = sj.plot.h2(run, save=tmp_path / "h2.png")
    _check_png(tmp_path / "h2.png")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["id", "group"]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    total = run.posterior_mean("h2").sum(axis=1)[labels].values
    assert np.all(np.diff(total) <= 1e-12)
    for effect in ("id", "group"):
        fig = sj.plot.correlations(run, kind="both", effect=effect, save=tmp_path / f"corr_{effect}.png")
        _check_png(tmp_path / f"corr_{effect}.png")
        _unit_diagonal_images(fig, 2)
        assert effect in fig.axes[0].get_title()
        order = sj.plot.trait_order(run, by="genetic", effect=effect)
        G = run.posterior_mean("G")[effect].loc[order, order].values
        sd = np.sqrt(np.diag(G))
        np.testing.assert_allclose(np.asarray(fig.axes[0].images[0].get_array()), G / np.outer(sd, sd), atol=1e-12)
    fig = sj.plot.trace(run, var_names="h2", save=tmp_path / "trace.png")
    _check_png(tmp_path / "trace.png")
    assert len(fig.axes) == 2 * 12  # 2 effects x 6 traits, max_panels 12
    sj.plot.loadings(run, save=tmp_path / "loadings.png")
    sj.plot.predicted_vs_observed(run, save=tmp_path / "pvo.png")
    _check_png(tmp_path / "loadings.png")
    _check_png(tmp_path / "pvo.png")
    with pytest.raises(sj.SlamjaxInputError, match="'cage'.*'id', 'group'"):
        sj.plot.correlations(run, effect="cage")
