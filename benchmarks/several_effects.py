"""Seconds per iteration and memory of the cholesky and woodbury backends with several random effects.

The issue's grid: R = 2 and 3 random effects at n = 1000, p = 100, h2_divisions = 10 and 20
(an animal effect with a pedigree relationship matrix plus R - 1 iid groupings such as cages).
Each configuration runs in its own process so that peak memory (ru_maxrss) is its own.

    python benchmarks/several_effects.py [--configs 2:10 2:20 3:10 3:20] [--n 1000] [--p 100]
                                         [--backends cholesky woodbury]
"""

import argparse
import itertools
import json
import resource
import subprocess
import sys
import time


def one(R: int, divisions: int, n: int, p: int, iterations: int, backend: str) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import numpy as np

    import slamjax as sj
    from slamjax.random_effects import memory_estimate
    from slamjax.random_effects.woodbury import first_effect, grid_pairs, woodbury_memory_estimate
    from slamjax.sampler import run_warmup
    from slamjax.state import init_state

    ds = sj.datasets.simulate(n=n, p=p, k=5, seed=0, n_groups=n // 10)
    data = ds.data.copy()
    rng = np.random.default_rng(1)
    for m in range(2, R):
        data[f"group{m}"] = [f"h{g}" for g in rng.integers(0, n // 20, n)]
    formula = "~ 1 + (1|id) + (1|group)" + "".join(f" + (1|group{m})" for m in range(2, R))
    started = time.perf_counter()
    model = sj.Model(Y=ds.Y, data=data, formula=formula, relmat={"id": ds.relmat["id"]}, n_factors=10,
                     h2_divisions=divisions, backend=backend)
    setup = time.perf_counter() - started
    keys = jax.random.split(jax.random.key(0), 1)
    states = jax.vmap(init_state, in_axes=(0, None))(keys, model.data)
    states, _ = run_warmup(model.data, states, keys, 0, 1)
    jax.block_until_ready(states)
    started = time.perf_counter()
    states, _ = run_warmup(model.data, states, keys, 1, 1 + iterations)
    jax.block_until_ready(states)
    per_iteration = (time.perf_counter() - started) / iterations
    sizes, n_grid = model.random_effect.sizes, model.grid.shape[0]
    if backend == "woodbury":
        n_pairs = grid_pairs(model.grid, first_effect(sizes))[0].shape[0]
        estimate = woodbury_memory_estimate(n, sizes, n_grid, n_pairs)
    else:
        estimate = memory_estimate(n, sizes, n_grid)
    return dict(
        backend=backend, R=R, divisions=divisions, grid=int(n_grid), n=n, p=p, setup_s=setup, s_per_it=per_iteration,
        estimate_GiB=estimate / 2**30,
        peak_rss_GiB=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="several random effects: seconds per iteration and memory")
    parser.add_argument("--configs", nargs="+", default=["2:10", "2:20", "3:10", "3:20"], help="R:h2_divisions")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--p", type=int, default=100)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--backends", nargs="+", default=["cholesky", "woodbury"], choices=["cholesky", "woodbury"])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        R, d, backend = args.one.split(":")
        print(json.dumps(one(int(R), int(d), args.n, args.p, args.iterations, backend)))
        return
    print(f"{'backend':>8} {'R':>2} {'d':>3} {'grid':>5} {'n':>5} {'p':>4} {'setup s':>8} {'s/it':>8} "
          f"{'estimate GiB':>12} {'peak RSS GiB':>12}")
    for config, backend in itertools.product(args.configs, args.backends):
        command = [sys.executable, __file__, "--one", f"{config}:{backend}", "--n", str(args.n), "--p", str(args.p),
                   "--iterations", str(args.iterations)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode:
            print(f"{config} {backend}: failed: {result.stderr.strip().splitlines()[-1]}")
            continue
        r = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"{r['backend']:>8} {r['R']:>2} {r['divisions']:>3} {r['grid']:>5} {r['n']:>5} {r['p']:>4} "
              f"{r['setup_s']:>8.1f} {r['s_per_it']:>8.3f} {r['estimate_GiB']:>12.2f} {r['peak_rss_GiB']:>12.2f}",
              flush=True)


if __name__ == "__main__":
    main()
