"""Missing-data groups against imputation: seconds per iteration, ESS per second of G, accuracy.

Data simulated with a fraction of cells missing at random (default 60 %). For each seed and each
path the same model is fitted (one compile run first, then a timed run), and the script prints
seconds per iteration, the median bulk ESS of the G draws per second of sampling, and the mean
over traits of the correlation between the posterior-mean fitted values and the held-out cells.

    python benchmarks/missing_data.py [--n 300] [--p 20] [--seeds 0 1 2] [--warmup 500] [--samples 500]
"""

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import arviz as az
import numpy as np

import slamjax as sj


def one(missing: str, seed: int, args) -> dict:
    ds = sj.datasets.simulate(n=args.n, p=args.p, k=args.k, seed=seed, fraction_missing=args.fraction)
    model = sj.Model(Y=ds.Y, data=ds.data, formula="~ 1 + (1|id)", relmat={"id": ds.relmat["id"]},
                     n_factors=args.factors, missing=missing, max_missing_groups=args.max_groups)
    settings = dict(num_chains=args.chains, seed=seed, progress=False, record_covariances=True, chunk_size=100)
    sj.sample(model, num_warmup=2, num_samples=100, **settings)  # compile both loops for these shapes
    started = time.perf_counter()
    run = sj.sample(model, num_warmup=args.warmup, num_samples=args.samples, **settings)
    seconds = time.perf_counter() - started
    ess = az.ess(run.datatree, var_names=["G"], method="bulk")["G"].to_numpy()
    fitted = run.posterior_mean("Eta_mean").to_numpy()
    held_out = ds.Y.isna().to_numpy()
    complete = ds.truth["Y_complete"]
    accuracy = np.mean([
        np.corrcoef(fitted[held_out[:, j], j], complete[held_out[:, j], j])[0, 1] for j in range(args.p)
    ])
    return dict(
        path=missing, seed=seed, groups=model.missing_description,
        s_per_it=seconds / (args.warmup + args.samples), ess_per_s=float(np.median(ess)) / seconds,
        accuracy=float(accuracy),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="missing-data groups vs imputation")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--p", type=int, default=20)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--factors", type=int, default=6)
    parser.add_argument("--fraction", type=float, default=0.6)
    parser.add_argument("--max-groups", type=int, default=20)
    parser.add_argument("--chains", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=500)
    args = parser.parse_args()
    print(f"{'path':>7} {'seed':>4} {'s/it':>8} {'ESS(G)/s':>9} {'accuracy':>8}  groups")
    results = []
    for seed in args.seeds:
        for missing in ("groups", "impute"):
            r = one(missing, seed, args)
            results.append(r)
            print(f"{r['path']:>7} {r['seed']:>4} {r['s_per_it']:>8.4f} {r['ess_per_s']:>9.1f} {r['accuracy']:>8.4f}  "
                  f"{r['groups']}", flush=True)
    for missing in ("groups", "impute"):
        rows = [r for r in results if r["path"] == missing]
        print(f"{missing:>7} mean {np.mean([r['s_per_it'] for r in rows]):>8.4f} "
              f"{np.mean([r['ess_per_s'] for r in rows]):>9.1f} {np.mean([r['accuracy'] for r in rows]):>8.4f}")


if __name__ == "__main__":
    main()
