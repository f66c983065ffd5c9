"""Mixing with and without the sampler's two additions to MegaLMM's sweep: the collapsed h2 draw
(marginal over beta and tau) and the exact draw of the factors' rotation (step 0).

Every variant runs the same chains (same seed, same model) and reports, over the label-free
quantities h2 and diag(G): the median and largest R-hat, the median bulk ESS per 1000 sweeps and
per second, and seconds per sweep (compilation excluded by a short run first).

    python benchmarks/mixing.py [--n 500] [--p 100] [--k 5] [--factors 10] [--warmup 500] [--samples 1000]
"""

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import arviz as az  # noqa: E402
import numpy as np  # noqa: E402

import slamjax as sj  # noqa: E402


def label_free(run, function) -> np.ndarray:
    tree = run.datatree
    h2 = function(tree, var_names=["h2"])["h2"].to_numpy().ravel()
    G = np.diagonal(function(tree, var_names=["G"])["G"].to_numpy())
    return np.concatenate([h2, G])


def main() -> None:
    parser = argparse.ArgumentParser(description="mixing with and without the collapsed h2 draw and the rotation step")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--p", type=int, default=100)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--factors", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--divisions", type=int, default=20)
    args = parser.parse_args()
    ds = sj.datasets.simulate(n=args.n, p=args.p, k=args.k, seed=args.seed)
    print(f"{'h2 draw':>12} {'rotation':>8} {'median R-hat':>12} {'max R-hat':>9} {'ESS/1000 sweeps':>15} {'ESS/s':>7} {'s/sweep':>8}")
    for h2_draw, rotate in (("collapsed", True), ("conditional", True), ("collapsed", False), ("conditional", False)):
        model = sj.Model(Y=ds.Y, data=ds.data, formula="~ 1 + (1|id)", relmat={"id": ds.relmat["id"]},
                         n_factors=args.factors, h2_divisions=args.divisions, h2_draw=h2_draw, rotate_factors=rotate)
        options = dict(num_chains=args.chains, seed=args.seed, progress=False, record_covariances=True)
        sj.sample(model, num_warmup=2, num_samples=2, **options)  # compile
        started = time.perf_counter()
        run = sj.sample(model, num_warmup=args.warmup, num_samples=args.samples, **options)
        seconds = time.perf_counter() - started
        sweeps = args.warmup + args.samples
        rhat = label_free(run, az.rhat)
        ess = label_free(run, az.ess)
        per_sweep = seconds / sweeps
        print(f"{h2_draw:>12} {str(rotate):>8} {np.median(rhat):>12.3f} {rhat.max():>9.3f} "
              f"{1000 * np.median(ess) / (args.samples * args.chains):>15.1f} "
              f"{np.median(ess) / (seconds * args.samples / sweeps):>7.1f} {per_sweep:>8.4f}", flush=True)


if __name__ == "__main__":
    main()
