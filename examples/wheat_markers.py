"""Worked example: genomic prediction of wheat lines from markers (CIMMYT wheat, Crossa et al. 2010).

599 lines, grain yield in 4 environments, 1279 DArT markers, a pedigree relationship A and 10
cross-validation folds. Whole lines are held out (all 4 environments of a fold's lines masked:
the lines are predicted from their genotypes and relatives only), and three predictors compared
by the correlation of prediction and observation per environment:

* slamjax with the markers as fixed effects of the factors (ARD prior) beside the pedigree A:
  F = M B_M + Z U_F + E_F, so each line's prediction is M B_M Lambda + its pedigree part;
* slamjax with markers as a relationship (``sj.grm``, VanRaden) instead of A, no marker effects;
* ``sj.gblup``: one GBLUP per environment with the same genomic relationship.

Then the seed's indirect selection: env5 plays a late trait. Lines of a fold have env5 held out
but their three other environments observed (early traits), and env5 is predicted from their
genotypes and early traits together (``sj.cross_validate(..., traits=["env5"])``: the masked
cells' fitted values X B + F Lambda + Z U with F informed by both), against genotypes alone.

    python examples/wheat_markers.py [--factors 3] [--warmup 500] [--samples 500] [--folds 10]
"""

import argparse
import time

import numpy as np
import pandas as pd

import slamjax as sj


def gblup_cv(Y: pd.DataFrame, K: pd.DataFrame, folds: pd.Series) -> pd.DataFrame:
    """Held-out predictions of sj.gblup, fold by fold (lines x environments)."""
    predictions = pd.DataFrame(np.nan, index=Y.index, columns=Y.columns)
    for fold in sorted(folds.dropna().unique()):
        held = folds.index[folds == fold]
        masked = Y.copy()
        masked.loc[held] = np.nan
        fit = sj.gblup(masked, K)
        predictions.loc[held] = fit.predict(levels=list(held)).loc[held].to_numpy()
    return predictions


def accuracy(predictions: pd.DataFrame, Y: pd.DataFrame) -> pd.Series:
    return pd.Series({env: np.corrcoef(predictions[env], Y[env])[0, 1] for env in Y.columns})


def main() -> None:
    parser = argparse.ArgumentParser(description="wheat: genomic prediction with markers in the model")
    parser.add_argument("--factors", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--folds", type=int, default=10, help="how many of the 10 folds to run")
    args = parser.parse_args()

    wheat = sj.datasets.load_wheat()
    Y, data, A = wheat.Y, wheat.data, wheat.relmat["line"]
    markers = wheat.markers.loc[Y.index]
    folds = wheat.cv_folds["fold"].reindex(Y.index)
    folds = folds.where(folds <= args.folds)
    K = sj.grm(markers, coding="01")
    print(f"{len(Y)} lines, {markers.shape[1]} markers, environments {list(Y.columns)}; "
          f"{int(folds.notna().sum())} lines held out over {args.folds} folds")

    results, seconds = {}, {}
    # missing="impute": every fold's masked model has the same shapes and reuses the compiled sampler
    settings = dict(num_warmup=args.warmup, num_samples=args.samples, num_chains=1, seed=0, missing="impute")
    for name, model in {
        "slamjax, markers in X_F + pedigree A": sj.Model(
            Y=Y, data=data, formula="~ 1 + (1|line)", relmat={"line": A}, n_factors=args.factors,
            markers=markers, marker_prior="ard"),
        "slamjax, markers as relationship (grm)": sj.Model(
            Y=Y, data=data, formula="~ 1 + (1|line)", relmat={"line": K}, n_factors=args.factors),
    }.items():
        print(model)
        started = time.perf_counter()
        cv = sj.cross_validate(model, folds, **settings)
        seconds[name] = time.perf_counter() - started
        results[name] = accuracy(cv.predictions.loc[folds.notna()], Y.loc[folds.notna()])
        print(f"  {name}: {seconds[name]:.0f} s", flush=True)
    started = time.perf_counter()
    predictions = gblup_cv(Y, K, folds)
    seconds["sj.gblup (grm), one per environment"] = time.perf_counter() - started
    results["sj.gblup (grm), one per environment"] = accuracy(predictions.loc[folds.notna()], Y.loc[folds.notna()])

    table = pd.DataFrame(results).T
    table["mean"] = table.mean(axis=1)
    table["seconds"] = pd.Series(seconds)
    print("\nAccuracy (correlation of prediction and observation of held-out lines) per environment:")
    print(table.round(3).to_string())

    late = "env5"
    markers_model = sj.Model(Y=Y, data=data, formula="~ 1 + (1|line)", relmat={"line": A}, n_factors=args.factors,
                             markers=markers, marker_prior="ard")
    indirect = sj.cross_validate(markers_model, folds, traits=[late], **settings)
    held = folds.notna()
    both = np.corrcoef(indirect.predictions.loc[held, late], Y.loc[held, late])[0, 1]
    alone = results["slamjax, markers in X_F + pedigree A"][late]
    print(f"\nIndirect selection for {late}: accuracy from genotypes + the early environments {both:.3f}, "
          f"from genotypes alone {alone:.3f}")


if __name__ == "__main__":
    main()
