"""Resume is exact: chunks that end part-way, extensions of finished runs, reopened and killed runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import slamjax as sj

from _models import tiny_model
from _runs import assert_same_run, assert_same_states

# 13 warm-up sweeps (one chunk of 20 sweeps, cut short); 25 draws in chunks of 10 (the last one holds 5)
SETTINGS = dict(num_warmup=13, num_samples=25, thin=2, num_chains=2, chunk_size=10, seed=11, progress=False)
TOTAL = 40  # 25 draws, then 15 more


class _Stop(Exception):
    pass


@pytest.fixture(scope="module")
def model():
    return tiny_model(n=24, p=4, k=2, fraction_missing=0.1)


@pytest.fixture(scope="module")
def uninterrupted(model):
    return sj.sample(model, **dict(SETTINGS, num_samples=TOTAL))


def test_a_partial_last_chunk_leaves_the_state_after_its_last_draw(model):
    """The chain states and running means after 25 draws in chunks of 10 equal those of one chunk of 25."""
    chunked = sj.sample(model, **SETTINGS)
    whole = sj.sample(model, **dict(SETTINGS, chunk_size=25))
    assert_same_run(chunked, whole)


@pytest.mark.parametrize("where", ["memory", "store", "reopened"])
def test_extending_a_run_whose_last_chunk_was_partial(model, uninterrupted, tmp_path, where):
    store = None if where == "memory" else tmp_path / "run"
    run = sj.sample(model, store=store, **SETTINGS)
    assert run.complete and run.draws["h2"].shape[1] == 25
    if where == "reopened":
        run = sj.open_run(store)
    run.resume(num_samples=TOTAL - 25, progress=False)
    assert run.draws["h2"].shape[1] == TOTAL
    assert_same_run(run, uninterrupted)
    if store is not None:
        assert_same_run(sj.open_run(store), uninterrupted)


def test_stopped_in_warm_up_then_extended_twice(model, uninterrupted, tmp_path):
    """Stopped after the (partial) warm-up chunk, finished from disk, then extended from disk."""
    def stop_in_warm_up(progress):
        if progress["draws_done"] == 0:
            raise _Stop

    with pytest.raises(_Stop):
        sj.sample(model, store=tmp_path / "run", callback=stop_in_warm_up, **SETTINGS)
    run = sj.open_run(tmp_path / "run")
    assert run.draws == {} or run.draws["h2"].shape[1] == 0
    run.resume(progress=False)
    assert run.draws["h2"].shape[1] == 25
    run = sj.open_run(tmp_path / "run").resume(num_samples=7, progress=False)
    run = sj.open_run(tmp_path / "run").resume(num_samples=TOTAL - 32, progress=False)
    assert_same_run(run, uninterrupted)


def _meta(path: Path) -> dict:
    """run.json, or {} while it is not there yet."""
    try:
        return json.loads((path / "run.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def test_a_process_killed_from_outside_resumes_exactly(model, uninterrupted, tmp_path):
    """A subprocess samples 25 draws into a store (slowed by a sleep after every chunk); this
    process kills it with SIGKILL once a checkpoint holds draws, reopens the store, finishes the
    run and extends it to the length of the uninterrupted run."""
    path = tmp_path / "run"
    settings = SETTINGS
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import jax
        jax.config.update("jax_enable_x64", True)
        import slamjax as sj
        from _models import tiny_model
        model = tiny_model(n=24, p=4, k=2, fraction_missing=0.1)
        sj.sample(model, store={str(path)!r}, callback=lambda progress: time.sleep(0.5), **{settings!r})
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while _meta(path).get("draws_done", 0) < 10:
            assert child.poll() is None, child.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the sampling subprocess wrote no checkpoint in 300 s"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    run = sj.open_run(path)
    assert not run.complete and 10 <= run.draws["h2"].shape[1] < 25
    run.resume(progress=False)
    assert run.complete and run.draws["h2"].shape[1] == 25
    run.resume(num_samples=TOTAL - 25, progress=False)
    assert_same_run(run, uninterrupted)
    assert_same_states(sj.open_run(path).final_states, uninterrupted.final_states)
