"""What the marker block costs per sweep, by sampler, against the cost model the model chooses by.

Times step 6b alone (B_M given the factors' residual, ``slamjax.markers.sampler``) on random
genotypes, for the single-site blocked sampler and the joint (Bhattacharya et al. 2016) draw, and
prints the cost model's estimates (``sj.markers.marker_sampler_cost``) beside them; then one whole
sweep with and without markers.

    python benchmarks/markers.py [--n 500] [--markers 1000 10000] [--factors 10]
    python benchmarks/markers.py --sweeps --n 1000 --factors 20 --markers 1000 10000 50000   # the issue's table
"""

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import slamjax as sj  # noqa: E402
from slamjax.markers.sampler import marker_blocks, sample_joint, sample_single_site  # noqa: E402
from speed import seconds_per_iteration  # noqa: E402


def _median_seconds(function, *args, repeats=5):
    jax.block_until_ready(function(*args))
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(*args))
        timings.append(time.perf_counter() - start)
    return float(np.median(timings))


def block_seconds(n: int, m: int, k: int, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    M = rng.binomial(2, 0.3, size=(n, m)).astype(float)
    M -= M.mean(axis=0)
    R = jnp.asarray(rng.normal(size=(n, k)))
    w, tau = jnp.ones(k), jnp.ones(k)
    precision = jnp.asarray(rng.gamma(2.0, 1.0, size=(m, k)) * m)
    size = max(8, int(round(np.sqrt(n))))
    blocks = marker_blocks(M, size)
    effects, classes = jnp.zeros((m, k)), jnp.zeros((m, k), jnp.int32)
    single = jax.jit(lambda key, R: sample_single_site(key, blocks, effects, classes, R, w, tau,
                                                       precision[..., None], jnp.zeros((1, 1, 1)), False)[0])
    times = {"single_site": _median_seconds(single, jax.random.key(0), R)}
    if k * n * n * m <= 5e11:  # the joint draw's n x n products
        Mj = jnp.asarray(M)
        joint = jax.jit(lambda key, R: sample_joint(key, Mj, R, w, tau, precision)[0])
        times["joint"] = _median_seconds(joint, jax.random.key(0), R, repeats=3)
    return times, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--markers", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--factors", type=int, default=10)
    parser.add_argument("--traits", type=int, default=100)
    parser.add_argument("--sweeps", action="store_true", help="time whole sweeps for every prior (the issue's table)")
    parser.add_argument("--priors", nargs="+", default=["ard", "horseshoe", "bayesc"])
    args = parser.parse_args()
    platform = jax.default_backend()
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({platform}), float64")
    print(f"{'n':>5} {'m':>6} {'k':>3} {'sampler':>12} {'measured s':>11} {'model s':>9}")
    for m in args.markers:
        times, size = block_seconds(args.n, m, args.factors)
        model = sj.markers.marker_sampler_cost(args.n, m, args.factors, size, platform)
        for name, seconds in times.items():
            print(f"{args.n:>5} {m:>6} {args.factors:>3} {name:>12} {seconds:>11.4f} {model[name]:>9.4f}", flush=True)
        print(f"{'':>16} cost model picks {min(model, key=model.get)}; measured faster: {min(times, key=times.get)}")

    if args.sweeps:
        print(f"\nwhole sweep, n={args.n}, p={args.traits}, k={args.factors} (s per iteration, 1 chain):")
        ds = sj.datasets.simulate(n=args.n, p=args.traits, k=5, seed=0)
        rng = np.random.default_rng(1)
        base = seconds_per_iteration(sj.Model(Y=ds.Y, K=ds.relmat["id"], n_factors=args.factors), 1, 20)
        print(f"{'no markers':>24} {base:.4f}", flush=True)
        for m in args.markers:
            genotypes = rng.binomial(2, 0.3, size=(args.n, m)).astype(float)
            for prior in args.priors:
                model = sj.Model(Y=ds.Y, K=ds.relmat["id"], n_factors=args.factors, markers=genotypes, marker_prior=prior)
                seconds = seconds_per_iteration(model, 1, 20)
                print(f"{m:>8} markers {prior:>9} ({model.markers.sampler}) {seconds:.4f}  markers' share "
                      f"{(seconds - base) / seconds:.0%}", flush=True)
        return
    ds = sj.datasets.simulate(n=args.n, p=args.traits, k=5, seed=0)
    rng = np.random.default_rng(1)
    genotypes = rng.binomial(2, 0.3, size=(args.n, args.markers[0])).astype(float)
    plain = sj.Model(Y=ds.Y, K=ds.relmat["id"], n_factors=args.factors)
    with_markers = sj.Model(Y=ds.Y, K=ds.relmat["id"], n_factors=args.factors, markers=genotypes, marker_prior="bayesc")
    t_plain = seconds_per_iteration(plain, 1, 30)
    t_markers = seconds_per_iteration(with_markers, 1, 30)
    print(f"whole sweep n={args.n}, p={args.traits}, k={args.factors}: {t_plain:.4f} s; with {args.markers[0]} "
          f"markers (BayesC, {with_markers.markers.sampler}): {t_markers:.4f} s")


if __name__ == "__main__":
    main()
