"""Worked example: RNA-seq counts through voom, with factors (Bottomly et al. 2011 mouse striatum).

21 libraries from two inbred strains (C57BL/6J, DBA/2J) sequenced in three experiments. The counts
are filtered (cpm > 1 in at least 3 libraries: 10228 genes), turned into log2-cpm values with voom
precision weights by the package's own voom (``sj.obs.Voom``, the same weights as limma's to
rounding), and fitted with strain as a fixed effect, the sequencing experiment as a random effect
(3 levels) and sparse factors on the residual covariance of the genes:

    Eta = X B + F Lambda + Z_batch U + E,   log2-cpm_ij ~ N(Eta_ij, 1 / w_ij).

Prints the genes' strain effects with the largest posterior |mean| / sd, the share of each gene's
variance due to the batch, and for the factors that explain most variance the genes with the
largest loadings (aligned factors: ``run.posterior_mean("Lambda")``).

    python examples/bottomly_voom.py [--factors 10] [--warmup 500] [--samples 500] [--genes 2000]

``--genes`` keeps the most expressed genes only (0: all 10228), for a quicker run.
"""

import argparse
import time

import numpy as np
import pandas as pd

import slamjax as sj


def main() -> None:
    parser = argparse.ArgumentParser(description="bottomly: voom counts with factors")
    parser.add_argument("--factors", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--genes", type=int, default=2000, help="the most expressed genes kept (0: all)")
    parser.add_argument("--top", type=int, default=8, help="genes listed per factor")
    args = parser.parse_args()

    bottomly = sj.datasets.load_bottomly()
    counts = sj.obs.filter_expressed(bottomly.Y, min_cpm=1.0, min_samples=3)
    data = bottomly.data.rename(columns={"experiment.number": "batch"})
    design = pd.get_dummies(data["strain"], drop_first=True, dtype=float).assign(intercept=1.0)
    voom = sj.obs.Voom(counts, design=design[["intercept", *design.columns[:-1]]])
    print(f"{counts.shape[1]} genes with cpm > 1 in >= 3 of {counts.shape[0]} libraries; "
          f"voom weights from {voom.weights.to_numpy().min():.2f} to {voom.weights.to_numpy().max():.1f}")
    if args.genes:
        keep = voom.logcpm.mean(axis=0).nlargest(args.genes).index
        voom = sj.obs.Voom(logcpm=voom.logcpm[keep], weights=voom.weights[keep])

    model = sj.Model(observation=voom, data=data, formula="~ strain + (1|batch)", n_factors=args.factors)
    print(model)
    started = time.perf_counter()
    run = sj.sample(model, num_warmup=args.warmup, num_samples=args.samples, num_chains=args.chains, seed=1)
    print(f"sampled in {time.perf_counter() - started:.0f} s")

    B = run.draws["B"]  # (chain, draw, fixed, gene)
    strain = B[:, :, 1, :].reshape(-1, B.shape[-1])
    score = pd.Series(strain.mean(axis=0) / strain.std(axis=0), index=model.trait_names)
    print("\nStrain (DBA/2J - C57BL/6J) effects, log2 scale: largest |posterior mean / sd|")
    top = score.abs().nlargest(10).index
    print(pd.DataFrame({"effect": strain.mean(axis=0)[[model.trait_names.index(g) for g in top]],
                        "mean / sd": score[top]}, index=top).round(2).to_string())

    batch_share = run.posterior_mean("h2")
    print(f"\nShare of variance due to the sequencing batch: median {batch_share.median():.3f}, "
          f"90th percentile {batch_share.quantile(0.9):.3f}")

    Lambda = run.posterior_mean("Lambda")  # aligned factors x genes
    explained = (Lambda**2).sum(axis=1).sort_values(ascending=False)
    print("\nFactors by variance explained (sum of squared loadings):")
    print(explained.round(2).to_string())
    for factor in explained.index[:3]:
        loadings = Lambda.loc[factor]
        genes = loadings.abs().nlargest(args.top).index
        print(f"\n{factor}: largest loadings")
        print(loadings[genes].round(3).to_string())


if __name__ == "__main__":
    main()
