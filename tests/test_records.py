"""Size-aware records ([10] item 1): what a run keeps per draw and in running means, by size; G and R
averaged over every m-th draw; the message at the start; the memory check; the background writer."""

from __future__ import annotations

import numpy as np
import pytest

import slamjax as sj
from slamjax._errors import SlamjaxInputError
from slamjax._records import COVARIANCE_SHARE, LOADINGS_DRAWS_MAX_BYTES, plan_records
from slamjax._costs import covariance_record_cost, sweep_cost
from slamjax._store import BackgroundWriter
from slamjax._x64 import float64
from slamjax.alignment import align_factor_h2, combine_aligned_means, procrustes

from _models import tiny_model

SETTINGS = dict(num_warmup=10, num_samples=10, num_chains=2, seed=5, progress=False)


@pytest.fixture(scope="module")
def model():
    return tiny_model(n=30, p=4, k=2)


@pytest.fixture(scope="module")
def every_draw(model):
    return sj.sample(model, chunk_size=4, record_covariances=True, **SETTINGS)


def test_covariance_means_average_every_mth_draw_of_the_run(model, every_draw):
    """With covariance_every=3 the running means of G and R are the means of draws 0, 3, 6, 9 of
    each chain (indices in the run, not in a chunk: chunks of 4 draws cut across the groups), and
    the sampler's draws are those of a run that averages every draw."""
    run = sj.sample(model, chunk_size=4, record_covariances=True, covariance_every=3, **SETTINGS)
    for name in ("h2", "G", "Lambda", "tot_Eta_prec"):
        np.testing.assert_array_equal(run.draws[name], every_draw.draws[name])
    for name in ("G", "R"):
        thinned = run.draws[name][:, ::3].mean(axis=(0, 1))
        np.testing.assert_allclose(run.posterior_mean(name).to_numpy(), thinned, rtol=1e-12, atol=1e-15)
        every = every_draw.draws[name].mean(axis=(0, 1))
        np.testing.assert_allclose(every_draw.posterior_mean(name).to_numpy(), every, rtol=1e-12, atol=1e-15)
        assert not np.allclose(thinned, every)  # the two means differ: the test can tell them apart
    np.testing.assert_allclose(run.posterior_mean("U").to_numpy(), every_draw.posterior_mean("U").to_numpy(),
                               rtol=1e-12)  # the other running means still average every draw
    assert run.record_plan.covariance_every == 3 and "every 3rd draw" in run.record_plan.describe()


def test_covariance_means_resume_across_a_stop(model, tmp_path):
    """A run stopped after 5 draws and resumed counts the same draws of G as one uninterrupted."""
    settings = dict(SETTINGS, chunk_size=5, covariance_every=3, store=tmp_path / "run")
    whole = sj.sample(model, **dict(settings, store=None))

    class Stop(Exception):
        pass

    def stop(progress):
        if progress["draws_done"] >= 5:
            raise Stop

    with pytest.raises(Stop):
        sj.sample(model, callback=stop, **settings)
    run = sj.open_run(tmp_path / "run")
    assert run.settings["covariance_every"] == 3
    run.resume(progress=False)
    np.testing.assert_allclose(run.posterior_mean("G").to_numpy(), whole.posterior_mean("G").to_numpy(), rtol=1e-12)


@float64
def _plan(model, **kwargs):
    options = dict(num_chains=4, num_samples=1000, chunk_size=100, record_covariances=None,
                   record_genetic_values=False, record_loadings=None, covariance_every=None,
                   available_memory=2**62)
    return plan_records(model.data, **{**options, **kwargs})


def test_records_are_chosen_by_size():
    small = tiny_model(n=30, p=4, k=2)
    plan, settings = _plan(small)
    assert settings == dict(record_covariances=True, record_loadings=True, covariance_every=1)
    assert {"G", "R", "Lambda", "h2", "F_h2", "tot_Eta_prec"} <= set(plan.per_draw)

    wide = tiny_model(n=20, p=300, k=20, h2_divisions=5)  # p^2 k against n p k: G and R outgrow the sweep
    plan, settings = _plan(wide)
    data = wide.data
    m = settings["covariance_every"]
    share = covariance_record_cost(data) / sum(sweep_cost(data).values())
    assert not settings["record_covariances"] and "G" not in plan.per_draw
    assert m > 1 and share / m <= COVARIANCE_SHARE < share / (m - 1)  # the smallest m under the share
    assert settings["record_loadings"]  # 4 x 1000 x 20 x 300 doubles: 192 MB

    many = 1 + LOADINGS_DRAWS_MAX_BYTES // (8 * 4 * 20 * 300)
    plan, settings = _plan(wide, num_samples=many)
    assert not settings["record_loadings"] and "Lambda" not in plan.per_draw
    assert plan.store_bytes == 4 * many * plan.bytes_per_draw

    plan, settings = _plan(wide, record_covariances=True, record_loadings=True, covariance_every=7)
    assert settings == dict(record_covariances=True, record_loadings=True, covariance_every=7)


def test_bytes_per_draw_are_those_of_the_draws(model, every_draw):
    plan = every_draw.record_plan
    per_chain_draw = sum(value[0, 0].nbytes for value in every_draw.draws.values())
    assert plan.bytes_per_draw == per_chain_draw
    assert plan.store_bytes == 2 * 10 * per_chain_draw
    assert set(plan.per_draw) == set(every_draw.draws)


def test_records_that_do_not_fit_are_refused_before_sampling(model):
    plan, _ = _plan(model, num_samples=10**5)
    assert plan.store_bytes > 2 * 4 * plan.device_bytes
    with pytest.raises(SlamjaxInputError, match="memory: .* of draws would not fit .*thin"):
        _plan(model, available_memory=4 * plan.device_bytes, num_samples=10**5)
    with pytest.raises(SlamjaxInputError, match="memory: the records need .* on the device"):
        _plan(model, available_memory=1_000)


def test_the_plan_is_said_at_the_start(model, capsys):
    sj.sample(model, **dict(SETTINGS, progress=True, num_warmup=2, num_samples=2))
    out = capsys.readouterr()
    said = out.out + out.err
    assert "slamjax: records: every draw of" in said and "running means of G, R, U, Eta_mean" in said


def test_without_loadings_the_factor_means_are_running_means_of_aligned_draws(model):
    """record_loadings=False keeps running means of each draw rotated onto the running sum of the
    draws before it (Procrustes), over every m-th draw: replayed here on the host from the Lambda
    draws of a run with the same seed, then combined across chains as ``combine_aligned_means``."""
    settings = dict(SETTINGS, chunk_size=4, covariance_every=2)
    run = sj.sample(model, record_loadings=False, **settings)
    full = sj.sample(model, record_loadings=True, **settings)
    assert "Lambda" not in run.draws and "F_h2" in run.draws
    np.testing.assert_array_equal(run.draws["F_h2"], full.draws["F_h2"])
    scale = np.asarray(model.Y_scale)
    Lambda = full.draws["Lambda"][:, ::2] / scale  # (chain, draw, k, p): draws 0, 2, ..., 8
    F_h2, B_F = full.draws["F_h2"][:, ::2], full.draws["B_F"][:, ::2]
    means = {"Lambda": [], "F_h2": [], "B_F": []}
    for chain in range(Lambda.shape[0]):
        S, f, b = np.zeros(Lambda.shape[2:]), np.zeros(F_h2.shape[2:]), np.zeros(B_F.shape[2:])
        for d in range(Lambda.shape[1]):
            T = np.eye(S.shape[0]) if d == 0 else procrustes(S, Lambda[chain, d])
            S, f, b = S + T @ Lambda[chain, d], f + align_factor_h2(T, F_h2[chain, d]), b + B_F[chain, d] @ T.T
        for name, value in zip(means, (S, f[None], b)):
            means[name].append(value / Lambda.shape[1])
    Lambda_mean, F_h2_mean, B_F_mean = combine_aligned_means(*(np.stack(v) for v in means.values()))
    np.testing.assert_allclose(run.posterior_mean("Lambda").to_numpy(), Lambda_mean * scale, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(run.posterior_mean("F_h2").to_numpy(), F_h2_mean[0], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(run.posterior_mean("B_F").to_numpy(), B_F_mean, rtol=1e-8, atol=1e-10)
    assert list(run.posterior_mean("Lambda").index) == list(model.factor_names)
    with pytest.raises(SlamjaxInputError, match="record_loadings=True"):
        run.aligned_factors()
    assert "F_h2" not in run.posterior and "h2" in run.posterior  # raw factor draws are not reported
    assert np.isfinite(run.summary()["mean"]).all()
    assert "aligned Lambda (over every 2nd draw)" in run.record_plan.describe()


@pytest.mark.parametrize("name, value", [("covariance_every", 0), ("covariance_every", 1.5),
                                         ("record_loadings", "yes"), ("record_covariances", 1)])
def test_bad_record_settings_are_refused(model, name, value):
    with pytest.raises(SlamjaxInputError, match=name):
        sj.sample(model, **{**SETTINGS, name: value})


def test_background_writer_runs_in_order_and_reports_a_failed_write():
    done = []
    writer = BackgroundWriter()
    for i in range(5):
        writer.submit(done.append, i)
    writer.wait()
    assert done == list(range(5))

    def fail():
        raise OSError("disk full")

    writer.submit(fail)
    with pytest.raises(OSError, match="disk full"):
        writer.submit(done.append, 5)
    writer.close()
