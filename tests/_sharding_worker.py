"""Sharded runs for tests/test_sharding.py, each in its own process (the device count and
``jax.distributed`` are fixed when JAX starts).

    python tests/_sharding_worker.py devices OUT.json          # 4 forced CPU devices
    python tests/_sharding_worker.py process ID ADDRESS OUT    # one of 2 jax.distributed processes
"""

import json
import os
import sys

MODEL = dict(n=200, p=40, k=3, seed=1)  # p = 40: no other axis of the model has that length
SAMPLE = dict(num_warmup=10, num_samples=20, num_chains=2, seed=3, progress=False)


def model():
    import slamjax as sj

    ds = sj.datasets.simulate(**MODEL)
    return sj.Model(Y=ds.Y, data=ds.data, formula="~ 1 + (1|id)", relmat={"id": ds.relmat["id"]}, n_factors=6,
                    h2_divisions=20)


def collectives(m, sharding) -> dict:
    """The collectives of the compiled warm-up loop (sweeps only) on ``sharding``: every
    all-gather and all-reduce as its shape."""
    import jax
    import jax.numpy as jnp

    from slamjax import _sharding
    from slamjax._lowering import unrolled_threefry
    from slamjax.sampler import _no_records, run_draws
    from slamjax.state import init_state

    with jax.enable_x64(True), unrolled_threefry():
        keys = jax.random.split(jax.random.key(0), SAMPLE["num_chains"])
        states = jax.vmap(init_state, in_axes=(0, None))(keys, m.data)
        accumulators = jax.vmap(lambda s: {})(states)
        data, states, keys, accumulators = sharding.place(m.data, states, keys, accumulators)
        text = run_draws.lower(data, states, keys, accumulators, 0, 1, 5, False, 0, num_draws=2,
                               record_fn=_no_records, sharding=sharding).compile().as_text()
    return _sharding.collectives(text)


def devices(out: str) -> None:
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import numpy as np

    import slamjax as sj
    from slamjax._sharding import trait_sharding

    m = model()
    one = sj.sample(m, **SAMPLE)
    result = {}
    for name, devices, groups in (("4 devices", 4, 1), ("2 x 2 devices", 4, 2), ("3 devices (uneven)", 3, 1)):
        run = sj.sample(m, devices=devices, chain_groups=groups, **SAMPLE)
        continuous = [k for k in one.draws if one.draws[k].dtype.kind == "f" and one.draws[k].size]
        result[name] = dict(
            max_difference=max(float(np.max(np.abs(one.draws[k] - run.draws[k]))) for k in continuous),
            scale=max(float(np.max(np.abs(one.draws[k]))) for k in continuous),
            discrete_equal=bool(np.array_equal(one.draws["resid_h2"], run.draws["resid_h2"])),
            Eta_spec=str(run.final_states.Eta.sharding.spec),
        )
    # a one-device store resumed on 4 devices (sj.open_run(devices=...)) continues the same chains
    import tempfile

    with tempfile.TemporaryDirectory() as store:
        first = dict(SAMPLE, num_samples=SAMPLE["num_samples"] // 2)
        sj.sample(m, store=store, chunk_size=first["num_samples"], **first)
        run = sj.open_run(store, devices=4)
        run.resume(num_samples=SAMPLE["num_samples"] - first["num_samples"], progress=False)
        result["resumed on 4 devices"] = dict(
            max_difference=float(np.max(np.abs(one.draws["h2"] - run.draws["h2"]))),
            scale=float(np.max(np.abs(one.draws["h2"]))),
            discrete_equal=bool(np.array_equal(one.draws["resid_h2"], run.draws["resid_h2"])),
        )
    result["collectives"] = collectives(m, trait_sharding(4, 1, MODEL["p"], SAMPLE["num_chains"]))
    with open(out, "w") as f:
        json.dump(result, f)


def process(index: int, address: str, out: str) -> None:
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=address, num_processes=2, process_id=index)
    import numpy as np

    import slamjax as sj

    run = sj.sample(model(), devices=4, store=out + ".store", **SAMPLE)
    if jax.process_index() == 0:
        np.savez(out, **run.draws)
    jax.distributed.shutdown()


if __name__ == "__main__":
    if sys.argv[1] == "devices":
        devices(sys.argv[2])
    else:
        process(int(sys.argv[2]), sys.argv[3], sys.argv[4])
