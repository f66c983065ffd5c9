"""Cross-validation on the CIMMYT wheat data: multi-trait slamjax model against single-trait GBLUP.

For each environment e in turn and each cross-validation fold, grain yield in environment e is
masked for the lines of the fold and predicted

  * by the multi-trait model "~ 1 + (1|line)" with the pedigree relationship matrix, fitted on
    all four environments (``sj.cross_validate``): a masked line is predicted from its yields in
    the other environments and from its relatives (posterior mean fitted value);
  * by single-trait GBLUP on environment e alone (``sj.gblup``, REML): a masked line is predicted
    by intercept + BLUP of its genetic value, from its relatives only.

Accuracy is the Pearson correlation of predictions and held-out yields, pooled over all folds
(and averaged over folds). Run with small settings first:

    python examples/wheat_cross_validation.py --warmup 100 --samples 100 --folds 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

import slamjax as sj


def gblup_cross_validation(Y: pd.DataFrame, K: pd.DataFrame, folds: pd.Series, environment: str):
    """Single-trait GBLUP predictions of ``environment`` for every fold's lines (NaN elsewhere)."""
    predictions = pd.Series(np.nan, index=Y.index)
    per_fold = {}
    for fold in sorted(folds.dropna().unique()):
        lines = folds.index[folds == fold]
        y = Y[[environment]].copy()
        y.loc[lines] = np.nan
        fit = sj.gblup(y, K)
        predicted = fit.fixed.loc["(Intercept)", environment] + fit.genetic_values.loc[lines, environment]
        predictions.loc[lines] = predicted.values
        per_fold[fold] = np.corrcoef(predicted.values, Y.loc[lines, environment].values)[0, 1]
    held = predictions.notna()
    pooled = np.corrcoef(predictions[held], Y.loc[held, environment])[0, 1]
    return pooled, pd.Series(per_fold)


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warmup", type=int, default=500, help="warm-up sweeps per fold (default 500)")
    parser.add_argument("--samples", type=int, default=500, help="recorded draws per fold (default 500)")
    parser.add_argument("--thin", type=int, default=1)
    parser.add_argument("--chains", type=int, default=1)
    parser.add_argument("--factors", type=int, default=3, help="latent factors (default 3)")
    parser.add_argument("--h2-divisions", type=int, default=20)
    parser.add_argument("--folds", type=int, default=10, help="use the first FOLDS of the 10 folds (default all)")
    parser.add_argument("--environments", nargs="*", default=None, help="environments to mask (default all)")
    parser.add_argument("--missing", choices=["auto", "groups", "impute"], default="auto",
                        help="how the masked cells are handled by the model (default auto)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    ds = sj.datasets.load_wheat()
    Y, A = ds.Y, ds.relmat["line"]
    folds = ds.cv_folds["fold"]
    chosen = sorted(folds.unique())[: args.folds]
    folds = folds.where(folds.isin(chosen))  # lines of the other folds are never held out
    environments = list(Y.columns) if not args.environments else args.environments
    model = sj.Model(
        Y=Y, data=ds.data, formula="~ 1 + (1|line)", relmat={"line": A},
        n_factors=args.factors, h2_divisions=args.h2_divisions,
    )
    print(model)
    print(f"{len(chosen)} folds ({int(folds.notna().sum())} lines held out in turn), {args.warmup} warm-up + "
          f"{args.samples} x {args.thin} sweeps per fold, {args.chains} chain(s), missing={args.missing!r}")

    rows = []
    for environment in environments:
        started = time.perf_counter()
        cv = sj.cross_validate(
            model, folds, [environment], num_warmup=args.warmup, num_samples=args.samples, thin=args.thin,
            num_chains=args.chains, seed=args.seed, missing=args.missing,
        )
        gblup_started = time.perf_counter()
        gblup_pooled, gblup_folds = gblup_cross_validation(Y, A, folds, environment)
        gblup_seconds = time.perf_counter() - gblup_started
        per_sweep = cv.sampler_seconds / cv.sweeps
        rows.append({
            "environment": environment,
            "multi-trait": cv.pooled[environment],
            "GBLUP": gblup_pooled,
            "multi-trait (fold mean)": cv.correlations[environment].mean(),
            "GBLUP (fold mean)": gblup_folds.mean(),
            # the first fold of a run compiles the sampler; the others reuse it
            "ms/sweep": 1e3 * (per_sweep.iloc[1:] if len(per_sweep) > 1 else per_sweep).median(),
            "slamjax s": cv.elapsed,
            "GBLUP s": gblup_seconds,
        })
        print(f"{environment}: multi-trait {cv.pooled[environment]:.3f}, GBLUP {gblup_pooled:.3f} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)

    table = pd.DataFrame(rows).set_index("environment")
    print()
    print("Accuracy (correlation of predictions with held-out yields, pooled over folds):")
    print(table.to_string(formatters={
        **{c: "{:.3f}".format for c in table.columns[:4]}, "ms/sweep": "{:.2f}".format,
        "slamjax s": "{:.0f}".format, "GBLUP s": "{:.1f}".format,
    }))
    print(f"\nslamjax: {table['ms/sweep'].median():.2f} ms per Gibbs sweep (median over folds after the first, "
          f"{args.chains} chain(s)); total {table['slamjax s'].sum():.0f} s, GBLUP total {table['GBLUP s'].sum():.1f} s")
    return table


if __name__ == "__main__":
    main()
