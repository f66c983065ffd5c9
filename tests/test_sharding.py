"""Traits and chains split over devices (slamjax/_sharding.py), and over processes.

The device count is fixed when JAX starts, so the sharded runs are made in subprocesses
(tests/_sharding_worker.py): 4 forced CPU devices, and 2 ``jax.distributed`` processes of 2 CPU
devices each. Their draws are compared with this process's one-device run of the same model and
seed: equal up to the order of floating-point sums (the random bits do not depend on the
layout), and the h2 grid indices (discrete) equal outright.
"""

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import slamjax as sj
from slamjax._errors import SlamjaxInputError

sys.path.insert(0, str(Path(__file__).parent))
import _sharding_worker as worker  # noqa: E402

WORKER = str(Path(__file__).parent / "_sharding_worker.py")
# 20 sweeps of float64 arithmetic in another order: differences of 1e-13 relative measured; a
# sharded sweep that drew anything differently (a key, a trait's column) differs by O(1)
RELATIVE = 1e-9


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    out = tmp_path_factory.mktemp("sharding") / "devices.json"
    subprocess.run([sys.executable, WORKER, "devices", str(out)], check=True, timeout=900)
    return json.loads(out.read_text())


@pytest.mark.parametrize("layout", ["4 devices", "2 x 2 devices", "3 devices (uneven)", "resumed on 4 devices"])
def test_sharded_draws_equal_one_device(four_devices, layout):
    result = four_devices[layout]
    assert result["max_difference"] <= RELATIVE * result["scale"], result
    assert result["discrete_equal"]


def test_states_stay_split_over_traits(four_devices):
    assert four_devices["4 devices"]["Eta_spec"] == "P(None, None, 'traits')"
    assert four_devices["2 x 2 devices"]["Eta_spec"] == "P('chains', None, 'traits')"


def test_sweep_moves_no_trait_sized_array(four_devices):
    """Inside the compiled sweep (4 devices, p = 40) nothing is gathered, and what is summed over
    devices is at most n x k per chain (the factor scores' right-hand side): the reductions over
    traits only. A sort over traits planted in the sweep adds four all-gathers of (chains, p)."""
    found = four_devices["collectives"]
    n, p, k, chains = worker.MODEL["n"], worker.MODEL["p"], 6, worker.SAMPLE["num_chains"]
    assert found["all-gather"] == []
    assert found["all-reduce"], "no reduction over traits at all: is the sweep split?"
    assert all(int(np.prod(shape)) <= chains * n * k and p not in shape for shape in found["all-reduce"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one(tmp_path):
    """2 processes x 2 CPU devices with jax.distributed (gloo collectives): process 0 keeps the
    draws and writes the store; both equal a one-process run, and the store reopens here."""
    address = f"localhost:{_free_port()}"
    out = str(tmp_path / "draws.npz")
    processes = [subprocess.Popen([sys.executable, WORKER, "process", str(i), address, out]) for i in range(2)]
    assert [p.wait(timeout=900) for p in processes] == [0, 0]
    sharded = np.load(out)
    one = sj.sample(worker.model(), **worker.SAMPLE)
    assert sorted(sharded.files) == sorted(one.draws)
    for name in sharded.files:
        if one.draws[name].size:
            np.testing.assert_allclose(sharded[name], one.draws[name], rtol=0,
                                       atol=RELATIVE * np.max(np.abs(one.draws[name])) + 1e-300)
    reopened = sj.open_run(out + ".store")
    np.testing.assert_allclose(reopened.draws["h2"], one.draws["h2"], rtol=0, atol=1e-9)


@pytest.mark.parametrize("devices, groups, problem", [
    (0, 1, "devices: asked for 0"), (99, 1, "devices: asked for 99"), ("gpu", 1, "devices: must be a device count"),
    (1, 2, "chain_groups: must be a whole number"), (None, 2, "chain_groups: needs devices"),
    (1, 0, "chain_groups: must be a whole number"),
])
def test_bad_layout_is_refused_before_sampling(devices, groups, problem):
    ds = sj.datasets.simulate(n=30, p=4, k=1, seed=0)
    model = sj.Model(Y=ds.Y, data=ds.data, formula="~ 1 + (1|id)", relmat={"id": ds.relmat["id"]}, n_factors=1)
    with pytest.raises(SlamjaxInputError, match=problem):
        sj.sample(model, num_warmup=1, num_samples=1, devices=devices, chain_groups=groups, progress=False)
