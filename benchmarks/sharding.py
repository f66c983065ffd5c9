"""Traits split over devices: seconds per sweep and compile time on 1, 2 and 4 devices.

Each case and device count runs in a fresh process with ``--xla_force_host_platform_device_count``
(CPU devices; on a GPU host pass ``--gpu`` to use the real ones). Times the compiled warm-up loop
(sweeps only, 4 chains) after its compile: the median of 3 x ``sweeps`` sweeps. Also counts what
the compiled sweep exchanges between devices (all-gathers, all-reduces and their float64 numbers
per sweep).

    python benchmarks/sharding.py                   # cases S and W, 1 / 2 / 4 CPU devices
    python benchmarks/sharding.py --cases A --gpu   # the Arabidopsis size on the host's GPUs

On a CPU the forced devices share the machine's cores (and forcing them splits the CPU client's
threads: one device of 4 forced ones sweeps S 8x slower than the plain client, which the one-device
rows therefore use), so they show the cost of the layout, not a speed-up; the speed-up target (A over 4 devices at least 3x one)
needs 4 accelerators.
"""

import argparse
import json
import os
import subprocess
import sys
import time

CASES = {  # n, p, true factors, fitted factors
    "S": (500, 100, 5, 10),
    "W": (665, 2000, 20, 40),  # Arabidopsis rows, a tenth of its traits
    "A": (665, 20842, 50, 166),
}


def _one(case: str, devices: int, sweeps: int) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    import slamjax as sj
    from slamjax._lowering import unrolled_threefry
    from slamjax._sharding import collectives, trait_sharding
    from slamjax.sampler import _no_records, run_draws
    from slamjax.state import init_state

    n, p, k, factors = CASES[case]
    ds = sj.datasets.simulate(n=n, p=p, k=k, seed=1)
    model = sj.Model(Y=ds.Y, data=ds.data, formula="~ 1 + (1|id)", relmat={"id": ds.relmat["id"]},
                     n_factors=factors, h2_divisions=20)
    chains = 4
    with jax.enable_x64(True), unrolled_threefry():
        keys = jax.random.split(jax.random.key(1), chains)
        states = jax.vmap(init_state, in_axes=(0, None))(keys, model.data)
        accumulators = jax.vmap(lambda s: {})(states)
        data = model.data
        sharding = trait_sharding(devices, 1, p, chains) if devices > 1 else None
        if sharding is not None:
            data, states, keys, accumulators = sharding.place(data, states, keys, accumulators)
        arguments = (data, states, keys, accumulators, 0, 1, sweeps, False, 0)
        options = dict(num_draws=2, record_fn=_no_records, sharding=sharding)
        start = time.perf_counter()
        compiled = run_draws.lower(*arguments, **options).compile()
        out = dict(case=case, devices=devices, compile_s=time.perf_counter() - start)
        found = collectives(compiled.as_text())
        out.update(all_gathers=len(found["all-gather"]),
                   all_reduce_numbers=sum(int(np.prod(shape)) for shape in found["all-reduce"]))
        states, *_ = run_draws(*arguments, **options)  # the first call runs the compile above again
        jax.block_until_ready(states)
        timings = []
        for _ in range(3):
            start = time.perf_counter()
            states, *_ = run_draws(data, states, keys, accumulators, 0, 1, sweeps, False, 0, **options)
            jax.block_until_ready(states)
            timings.append((time.perf_counter() - start) / sweeps)
        out["s_per_sweep"] = float(np.median(timings))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["S", "W"], choices=list(CASES))
    parser.add_argument("--devices", nargs="+", type=int, default=[1, 2, 4])
    parser.add_argument("--sweeps", type=int, default=20)
    parser.add_argument("--gpu", action="store_true", help="use the host's accelerators, not forced CPU devices")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # internal: CASE DEVICES in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_one(args.one[0], int(args.one[1]), args.sweeps)))
        return
    print(f"{'case':4} {'devices':>7} {'compile s':>9} {'s/sweep':>9} {'vs 1':>6} {'all-gathers':>11} "
          f"{'all-reduced numbers':>19}", flush=True)
    for case in args.cases:
        base = None
        for devices in args.devices:
            env = dict(os.environ)
            if not args.gpu:  # one device: the plain CPU client (forced devices split its threads: 8x slower at S)
                env["JAX_PLATFORMS"] = "cpu"
                if devices > 1:
                    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"
            result = subprocess.run([sys.executable, __file__, "--one", case, str(devices), "--sweeps",
                                     str(args.sweeps)], capture_output=True, text=True, check=True, env=env)
            row = json.loads(result.stdout.strip().splitlines()[-1])
            base = row["s_per_sweep"] if base is None else base
            print(f"{case:4} {devices:7d} {row['compile_s']:9.1f} {row['s_per_sweep']:9.4f} "
                  f"{base / row['s_per_sweep']:6.2f} {row['all_gathers']:11d} {row['all_reduce_numbers']:19d}",
                  flush=True)


if __name__ == "__main__":
    main()
