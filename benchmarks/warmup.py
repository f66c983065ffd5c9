"""Warm-up needed with and without the warm-up aids (factor re-ordering, factor-analysis start),
with slamjax's sweep and with MegaLMM's (h2 given beta and tau, no rotation step).

For each variant and each warm-up length w, 4 chains run w warm-up sweeps and then record 2000
draws; the script prints the largest R-hat (rank-normalised split R-hat, arviz) over the
label-free quantities h2 and diag(G), and the share of them below 1.01. The warm-up a variant
needs is the first w where the largest R-hat falls below the threshold. The draws must be many:
with about 0.4 effective draws per draw, 500 draws per chain leave the largest of 200 R-hats
near 1.015 even at stationarity, 2000 near 1.004.

    python benchmarks/warmup.py [--n 500] [--p 100] [--k 5] [--factors 10] [--warmups 0 50 100 200 400] [--samples 2000]
"""

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import arviz as az  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import slamjax as sj  # noqa: E402
from slamjax.posterior import _covariances  # noqa: E402

MEGALMM_SWEEP = dict(h2_draw="conditional", rotate_factors=False)
# name: (model options, sampling options)
VARIANTS = {
    "MegaLMM sweep": (MEGALMM_SWEEP, dict(init="random", reorder_factors=False)),
    "MegaLMM + reorder": (MEGALMM_SWEEP, dict(init="random", reorder_factors=True)),
    "random start": ({}, dict(init="random", reorder_factors=False)),
    "random + reorder": ({}, dict(init="random", reorder_factors=True)),
    "FA start": ({}, dict(init="factor_analysis", reorder_factors=False)),
}


def genetic_variances(state, data):
    """diag(G) on the sampler's scale (R-hat does not depend on the scale)."""
    return jnp.diagonal(_covariances(state, data)[1][0])


def max_rhat(run) -> tuple[float, float]:
    tree = run.datatree
    values = np.concatenate([az.rhat(tree, var_names=[name])[name].to_numpy().ravel() for name in ("h2", "diag_G")])
    return float(values.max()), float(np.mean(values < 1.01))


def main() -> None:
    parser = argparse.ArgumentParser(description="warm-up needed with and without the warm-up aids")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--p", type=int, default=100)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--factors", type=int, default=10)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threshold", type=float, default=1.01)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--warmups", type=int, nargs="+", default=[0, 50, 100, 200, 400])
    args = parser.parse_args()
    ds = sj.datasets.simulate(n=args.n, p=args.p, k=args.k, seed=args.seed)
    print(f"{'variant':>20} {'warm-up':>7} {'max R-hat':>9} {'share < 1.01':>12} {'seconds':>8}")
    needed = {}
    for name in args.variants:
        model_options, options = VARIANTS[name]
        model = sj.Model(Y=ds.Y, data=ds.data, formula="~ 1 + (1|id)", relmat={"id": ds.relmat["id"]},
                         n_factors=args.factors, **model_options)
        for warmup in args.warmups:
            started = time.perf_counter()
            run = sj.sample(model, num_warmup=warmup, num_samples=args.samples, num_chains=4, seed=args.seed,
                            progress=False, record={"diag_G": genetic_variances}, **options)
            worst, share = max_rhat(run)
            print(f"{name:>20} {warmup:>7} {worst:>9.3f} {share:>12.2f} {time.perf_counter() - started:>8.1f}",
                  flush=True)
            if worst < args.threshold and name not in needed:
                needed[name] = warmup
    for name in args.variants:
        print(f"{name}: warm-up to max R-hat < {args.threshold}: {needed.get(name, f'> {max(args.warmups)}')}")


if __name__ == "__main__":
    main()
