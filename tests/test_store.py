"""Runs on disk: checkpoint after every chunk, resume bit for bit, Ctrl-C, kill -9, device memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

import slamjax as sj
from slamjax._store import RunStore

from _models import tiny_model
from _runs import assert_same_run as _assert_same_run

SETTINGS = dict(num_warmup=20, num_samples=60, thin=2, num_chains=2, chunk_size=10, seed=3, progress=False,
                reorder_factors=True)  # 2 warm-up chunks + 6 sampling chunks


class _Stop(Exception):
    pass


def _stop_after(draws: int):
    def callback(progress):
        if progress["draws_done"] >= draws:
            raise _Stop

    return callback


@pytest.fixture(scope="module")
def model():
    return tiny_model(n=30, p=4, k=2, fraction_missing=0.1)


@pytest.fixture(scope="module")
def uninterrupted(model):
    return sj.sample(model, **SETTINGS)


def test_exception_after_chunk_3_of_6_then_resume(model, uninterrupted, tmp_path):
    with pytest.raises(_Stop):
        sj.sample(model, store=tmp_path / "run", callback=_stop_after(30), **SETTINGS)
    run = sj.open_run(tmp_path / "run")
    assert not run.complete and run.draws["h2"].shape[1] == 30
    run.resume(progress=False)
    assert run.complete
    _assert_same_run(run, uninterrupted)
    again = sj.open_run(tmp_path / "run")  # what is on disk equals what the resumed run holds
    _assert_same_run(again, uninterrupted)


def test_killed_process_resumes_exactly(model, uninterrupted, tmp_path):
    """A subprocess writes the run and kills itself with SIGKILL after chunk 4 (the store is
    written behind the device, so chunk 4 may or may not be on disk; chunk 3 is: a write waits for
    the one before it); this process opens the store, summarises it and finishes it."""
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import jax
        jax.config.update("jax_enable_x64", True)
        import slamjax as sj
        from _models import tiny_model
        def kill(progress):
            if progress["draws_done"] >= 40:
                os.kill(os.getpid(), signal.SIGKILL)
        model = tiny_model(n=30, p=4, k=2, fraction_missing=0.1)
        sj.sample(model, store={str(tmp_path / "run")!r}, callback=kill, **{SETTINGS!r})
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    run = sj.open_run(tmp_path / "run")
    assert run.draws["h2"].shape[1] in (30, 40) and not run.complete
    with pytest.warns(UserWarning):  # few draws: r_hat / ess warning
        table = run.summary()
    assert {"r_hat", "ess_bulk", "ess_tail"} <= set(table.columns) and np.isfinite(table["mean"]).all()
    run.resume(progress=False)
    _assert_same_run(run, uninterrupted)


def test_draws_written_after_the_last_checkpoint_are_dropped(model, uninterrupted, tmp_path):
    with pytest.raises(_Stop):
        sj.sample(model, store=tmp_path / "run", callback=_stop_after(20), **SETTINGS)
    junk = {name: np.full((2, 10, *value.shape[2:]), 7.0) for name, value in uninterrupted.draws.items()}
    RunStore(tmp_path / "run").append_draws(junk, first=False)  # as if killed between append and checkpoint
    run = sj.open_run(tmp_path / "run")
    assert run.draws["h2"].shape[1] == 20
    run.resume(progress=False)
    _assert_same_run(run, uninterrupted)


def test_ctrl_c_stops_after_the_chunk_and_resumes(model, uninterrupted):
    def interrupt(progress):
        if progress["draws_done"] == 20:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.warns(UserWarning, match="interrupted"):
        run = sj.sample(model, callback=interrupt, **SETTINGS)
    assert not run.complete and run.draws["h2"].shape[1] == 20
    run.resume(progress=False)
    _assert_same_run(run, uninterrupted)


def test_extend_a_finished_run(model, uninterrupted, tmp_path):
    short = dict(SETTINGS, num_samples=40)
    run = sj.sample(model, store=tmp_path / "run", **short)
    with pytest.raises(sj.SlamjaxInputError, match="complete"):
        run.resume()
    run.resume(num_samples=20, progress=False)
    _assert_same_run(run, uninterrupted)
    assert sj.open_run(tmp_path / "run").draws["h2"].shape[1] == 60


def test_store_refuses_to_overwrite(model, tmp_path):
    sj.sample(model, store=tmp_path / "run", **dict(SETTINGS, num_samples=10))
    with pytest.raises(sj.SlamjaxInputError, match="already holds a run"):
        sj.sample(model, store=tmp_path / "run", **SETTINGS)
    with pytest.raises(sj.SlamjaxInputError, match="no slamjax run"):
        sj.open_run(tmp_path / "elsewhere")


def test_running_means_equal_the_mean_of_full_draws(uninterrupted):
    np.testing.assert_allclose(uninterrupted._means["R"], uninterrupted.draws["R"].mean(axis=(0, 1)), rtol=1e-10)
    np.testing.assert_allclose(uninterrupted._means["G"], uninterrupted.draws["G"].mean(axis=(0, 1)), rtol=1e-10)


def test_device_memory_does_not_grow_with_the_run(model):
    live_bytes = {}

    def measure(progress):
        if progress["draws_done"] in (10, 100):
            live_bytes[progress["draws_done"]] = sum(a.nbytes for a in jax.live_arrays())

    sj.sample(model, **dict(SETTINGS, num_samples=100, reorder_factors=False), callback=measure)
    assert live_bytes[10] == live_bytes[100]


def test_user_functions_are_recorded_and_survive_a_store(model, tmp_path):
    def first_loading(state, data):
        return state.Lambda[0] / jax.numpy.sqrt(state.tot_F_prec[0])

    settings = dict(SETTINGS, num_samples=20)
    run = sj.sample(model, store=tmp_path / "run", record={"first_loading": first_loading}, **settings)
    np.testing.assert_allclose(run.draws["first_loading"], run.draws["Lambda"][:, :, 0], rtol=1e-12)
    assert run.posterior["first_loading"].shape == (2, 20, 4)
    with pytest.raises(sj.SlamjaxInputError, match="pass them again"):
        sj.open_run(tmp_path / "run")
    reopened = sj.open_run(tmp_path / "run", record={"first_loading": first_loading})
    reopened.resume(num_samples=10, progress=False)
    assert reopened.draws["first_loading"].shape == (2, 30, 4)
    with pytest.raises(sj.SlamjaxInputError, match="already"):
        sj.sample(model, record={"h2": first_loading}, **settings)


def test_genetic_correlation_is_the_mean_of_per_draw_correlations(uninterrupted):
    G = uninterrupted.draws["G"]
    expected = np.zeros(G.shape[2:])
    for draw in G.reshape(-1, *G.shape[2:]):
        sd = np.sqrt(np.diag(draw))
        with np.errstate(invalid="ignore", divide="ignore"):
            correlation = np.nan_to_num(draw / np.outer(sd, sd))  # zero variance: correlation 0
        np.fill_diagonal(correlation, 1.0)
        expected += correlation / (G.shape[0] * G.shape[1])
    got = uninterrupted.posterior_mean("genetic_correlation")
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(np.diag(uninterrupted.posterior_mean("residual_correlation")), 1.0)


def test_store_has_named_dims_and_coords(model, tmp_path):
    import xarray as xr

    sj.sample(model, store=tmp_path / "run", **dict(SETTINGS, num_samples=20))
    stored = xr.open_zarr(tmp_path / "run" / "draws.zarr", consolidated=False)
    assert stored["h2"].dims == ("chain", "draw", "trait") and stored["h2"].shape == (2, 20, 4)
    assert stored["G"].dims == ("chain", "draw", "trait", "trait2")
    assert list(stored["trait"].values) == model.trait_names
