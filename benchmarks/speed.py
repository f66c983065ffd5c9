"""Seconds per Gibbs iteration after compilation (the issue's S and M sizes, 1 and 4 chains).

Targets on the 2-core CPU (R MegaLMM measured with 2 threads: 0.035 s/it on S, 0.60 s/it on M):
slamjax at most half of that per chain, and 4 vmapped chains at most 2x one chain.

    python benchmarks/speed.py [--sizes S M] [--chains 1 4] [--iterations 50]
"""


import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import slamjax as sj  # noqa: E402
from slamjax.sampler import run_warmup  # noqa: E402
from slamjax.state import init_state  # noqa: E402

SIZES = {
    "S": dict(n=500, p=100, k=5, factors=10),
    "M": dict(n=1000, p=1000, k=20, factors=40),
    "L": dict(n=2000, p=4000, k=30, factors=60),  # for accelerators
}
MEGALMM = {"S": 0.035, "M": 0.60, "L": float("nan")}
# the default sweep (rotation step; h2_draw="auto"), the collapsed h2 draw forced on, MegaLMM's sweep
SWEEPS = {
    "default": dict(h2_draw="auto", rotate_factors=True),
    "collapsed": dict(h2_draw="collapsed", rotate_factors=True),
    "megalmm": dict(h2_draw="conditional", rotate_factors=False),
}


def seconds_per_iteration(model: sj.Model, num_chains: int, iterations: int, *, repeats: int = 3,
                          statistic=np.median, warmup: int = 2, return_states: bool = False):
    """Seconds per iteration of ``num_chains`` vmapped chains after ``warmup`` sweeps (which
    compile): ``statistic`` of ``repeats`` timings (the min on a shared machine). With
    ``return_states``: (seconds, the chain states after the warm-up sweeps)."""
    data = model.data
    keys = jax.random.split(jax.random.key(0), num_chains)
    states = jax.vmap(init_state, in_axes=(0, None))(keys, data)
    states, _ = run_warmup(data, states, keys, 0, warmup)  # compile
    jax.block_until_ready(states)
    timings = []
    for repeat in range(repeats):
        start = time.perf_counter()
        out, _ = run_warmup(data, states, keys, warmup, warmup + iterations)
        jax.block_until_ready(out)
        timings.append((time.perf_counter() - start) / iterations)
    seconds = float(statistic(timings))
    return (seconds, states) if return_states else seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["S", "M"], choices=list(SIZES))
    parser.add_argument("--chains", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--missing", type=float, default=0.0, help="fraction of missing cells")
    parser.add_argument("--sweeps", nargs="+", default=["default", "megalmm"], choices=list(SWEEPS))
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({jax.default_backend()}), float64")
    print(f"{'size':>4} {'sweep':>9} {'n':>5} {'p':>5} {'k':>3} {'chains':>6} {'s/it':>9} {'s/it/chain':>10} {'MegaLMM':>8} {'ratio':>6}")
    for size in args.sizes:
        spec = SIZES[size]
        ds = sj.datasets.simulate(n=spec["n"], p=spec["p"], k=spec["k"], seed=0, fraction_missing=args.missing)
        for sweep in args.sweeps:
            model = sj.Model(Y=ds.Y, K=ds.relmat["id"], n_factors=spec["factors"], h2_divisions=20, **SWEEPS[sweep])
            one = None
            for chains in args.chains:
                per_it = seconds_per_iteration(model, chains, args.iterations)
                one = per_it if chains == 1 else one
                ratio = f"{per_it / one:.2f}x" if one else ""
                print(
                    f"{size:>4} {sweep:>9} {spec['n']:>5} {spec['p']:>5} {spec['factors']:>3} {chains:>6} "
                    f"{per_it:>9.4f} {per_it / chains:>10.4f} {MEGALMM[size]:>8.3f} {ratio:>6}",
                    flush=True,
                )

if __name__ == "__main__":
    main()
