"""float64 against float32 runs ([10] item 2): seconds per sweep, and how far the posteriors differ.

For each size: seconds per sweep of the compiled loop (``run_warmup``, ``num_chains`` vmapped
chains, after ``burn`` sweeps) with the model's data and the states in float64 and in float32 (as ``sj.sample(...,
dtype=...)`` casts them; float32 compiled under ``jax.default_matmul_precision("highest")``, as a
run is), interleaved repeats, the minimum of each (a shared machine). Then, for S only, one
``sj.sample`` run per dtype (same seed) and the maximum relative difference of the posterior means
of h2 between them, with the largest difference in Monte Carlo standard errors (sd / sqrt(ESS) of
both runs) for scale: the runs are independent Monte Carlo estimates of one posterior, so only
differences well beyond a few standard errors would be float32's doing. Sizes: S (n = 500,
p = 100, 10 factors) and M (n = 1000, p = 1000, 40 factors), as benchmarks/speed.py.

    python benchmarks/float32.py [--sizes S M] [--chains 4] [--sweeps 10 3] [--repeats 3] [--burn 20]
                                 [--warmup 500] [--samples 500] [--skip-posterior]
"""

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import slamjax as sj  # noqa: E402
from slamjax._dtype import cast_floats, matmul_precision  # noqa: E402
from slamjax.sampler import run_warmup  # noqa: E402
from slamjax.state import init_state  # noqa: E402

SIZES = {
    "S": dict(n=500, p=100, k=5, factors=10),
    "M": dict(n=1000, p=1000, k=20, factors=40),
}
DTYPES = ("float64", "float32")


def sweep_timer(model: sj.Model, dtype: str, chains: int, sweeps: int, burn: int):
    """(A function of the starting sweep t that runs ``sweeps`` sweeps of ``chains`` chains in ``dtype``
    and returns the seconds per sweep, the seconds to compile it). Timed from the states after
    ``burn`` sweeps (the first sweeps from the starting state are slower: rejection samplers)."""
    keys = jax.random.split(jax.random.key(0), chains)
    data = cast_floats(model.data, dtype)
    states = cast_floats(jax.vmap(init_state, in_axes=(0, None))(keys, model.data), dtype)
    started = time.perf_counter()
    with matmul_precision(dtype):
        states, _ = run_warmup(data, states, keys, 0, burn)
    jax.block_until_ready(states)
    compile_seconds = time.perf_counter() - started

    def run(t: int) -> float:
        start = time.perf_counter()
        with matmul_precision(dtype):
            out, _ = run_warmup(data, states, keys, t, t + sweeps)
        jax.block_until_ready(out)
        return (time.perf_counter() - start) / sweeps

    return run, compile_seconds


def posterior_h2(model: sj.Model, dtype: str, chains: int, warmup: int, samples: int):
    """Posterior means of h2 (p,), their Monte Carlo standard errors and the run's seconds."""
    import arviz as az

    started = time.perf_counter()
    run = sj.sample(model, num_warmup=warmup, num_samples=samples, num_chains=chains, seed=0, progress=False,
                    dtype=dtype, record_covariances=False)
    seconds = time.perf_counter() - started
    h2 = run.draws["h2"]
    ess = np.array([float(az.ess(h2[..., j])) for j in range(h2.shape[-1])])
    return h2.mean(axis=(0, 1)), h2.reshape(-1, h2.shape[-1]).std(axis=0) / np.sqrt(ess), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["S", "M"], choices=list(SIZES))
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--sweeps", nargs="+", type=int, default=[10, 3], help="sweeps per timing, per size")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=500, help="warm-up sweeps of the S runs")
    parser.add_argument("--samples", type=int, default=500, help="draws of the S runs")
    parser.add_argument("--burn", type=int, default=20, help="sweeps before the timings")
    parser.add_argument("--skip-posterior", action="store_true", help="timings only")
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({jax.default_backend()}), "
          f"{args.chains} chains")
    print(f"{'size':>4} {'n':>5} {'p':>5} {'k':>3} {'dtype':>8} {'compile+burn s':>14} {'s/sweep':>9} {'speed-up':>8}")
    for size, sweeps in zip(args.sizes, args.sweeps + args.sweeps[-1:] * len(args.sizes)):
        spec = SIZES[size]
        ds = sj.datasets.simulate(n=spec["n"], p=spec["p"], k=spec["k"], seed=0)
        model = sj.Model(Y=ds.Y, K=ds.relmat["id"], n_factors=spec["factors"], h2_divisions=20)
        timers = {dtype: sweep_timer(model, dtype, args.chains, sweeps, args.burn) for dtype in DTYPES}
        timings = {dtype: [] for dtype in DTYPES}
        for repeat in range(args.repeats):  # interleaved: both dtypes see the same machine load
            for dtype in DTYPES:
                timings[dtype].append(timers[dtype][0](args.burn + repeat * sweeps))
        best = {dtype: min(values) for dtype, values in timings.items()}
        for dtype in DTYPES:
            print(f"{size:>4} {spec['n']:>5} {spec['p']:>5} {spec['factors']:>3} {dtype:>8} {timers[dtype][1]:>14.1f} "
                  f"{best[dtype]:>9.4f} {best['float64'] / best[dtype]:>7.2f}x", flush=True)
        if size == "S" and not args.skip_posterior:
            (m64, se64, s64), (m32, se32, s32) = (posterior_h2(model, dtype, args.chains, args.warmup, args.samples)
                                                  for dtype in DTYPES)
            relative = np.abs(m64 - m32) / np.abs(m64)
            z = np.abs(m64 - m32) / np.sqrt(se64**2 + se32**2)
            print(f"S posterior means of h2 ({args.chains} chains x {args.samples} draws after {args.warmup} warm-up, "
                  f"{s64:.0f} s float64, {s32:.0f} s float32): max relative difference {relative.max():.4f} "
                  f"(trait {relative.argmax()}, h2 {m64[relative.argmax()]:.3f}), median {np.median(relative):.4f}; "
                  f"max |difference| / standard error {z.max():.2f}, median {np.median(z):.2f}", flush=True)


if __name__ == "__main__":
    main()
