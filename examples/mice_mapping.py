"""Worked example: mapping with BayesC on the factors (heterogeneous-stock mice, Valdar et al. 2006).

1814 mice, 20 obesity and blood-biochemistry traits, 10,346 SNPs and a pedigree relationship A.
The SNPs enter as fixed effects of the factors with a spike-and-slab prior (BayesC), so that each
SNP's posterior inclusion probability for a trait says how likely it acts on a factor that
explains at least 1 % of that trait's variance. These are compared with a single-marker scan of
each trait (least squares, sex as covariate: -log10 p) and drawn along the genome
(``sj.plot.inclusion``; the data carry no map, so SNPs are in their file order).

    python examples/mice_mapping.py [--factors 8] [--warmup 500] [--samples 500] [--snps 0] [--out mice_plots]
"""

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.stats  # noqa: E402

import slamjax as sj  # noqa: E402


def single_marker_scan(Y: pd.DataFrame, genotypes: pd.DataFrame, covariate: np.ndarray) -> pd.DataFrame:
    """-log10 p of each SNP for each trait: least squares of the trait on [1, covariate, SNP] over
    the mice that have the trait."""
    out = {}
    G = genotypes.to_numpy(dtype=float)
    for trait in Y.columns:
        observed = Y[trait].notna().to_numpy()
        y = Y[trait].to_numpy()[observed]
        base = np.column_stack([np.ones(observed.sum()), covariate[observed]])
        Q, _ = np.linalg.qr(base)
        r = y - Q @ (Q.T @ y)
        X = G[observed] - Q @ (Q.T @ G[observed])
        sxx = np.einsum("ij,ij->j", X, X)
        beta = X.T @ r / np.where(sxx > 0, sxx, np.inf)
        dof = observed.sum() - 3
        resid = (r @ r - beta**2 * sxx) / dof
        t = beta * np.sqrt(sxx / np.maximum(resid, 1e-300))
        out[trait] = -np.log10(np.maximum(2 * scipy.stats.t.sf(np.abs(t), dof), 1e-300))
    return pd.DataFrame(out, index=genotypes.columns)


def main() -> None:
    parser = argparse.ArgumentParser(description="mice: BayesC on the factors")
    parser.add_argument("--factors", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--snps", type=int, default=0, help="every k-th SNP only (0: all) for a quicker run")
    parser.add_argument("--out", default="mice_plots")
    args = parser.parse_args()

    mice = sj.datasets.load_mice()
    Y, data = mice.Y, mice.data
    genotypes = mice.markers.loc[Y.index]
    if args.snps:
        genotypes = genotypes.iloc[:, :: args.snps]
    model = sj.Model(Y=Y, data=data, formula="~ GENDER + (1|mouse)", relmat=mice.relmat, n_factors=args.factors,
                     markers=sj.markers.Markers(genotypes), marker_prior=sj.markers.BayesC(a=1, b=99))
    print(model)
    started = time.perf_counter()
    run = sj.sample(model, num_warmup=args.warmup, num_samples=args.samples, num_chains=2, seed=1)
    print(f"sampled in {time.perf_counter() - started:.0f} s")

    pip = run.inclusion_probabilities("trait")
    scan = single_marker_scan(Y, genotypes[model.marker_names], (data["GENDER"] == "M").to_numpy(dtype=float))
    for trait in ["Obesity.BMI", "Obesity.BodyLength", "Biochem.HDL"]:
        top = pip[trait].nlargest(5)
        print(f"\n{trait}: SNPs with the largest inclusion probability, beside their single-marker -log10 p")
        print(pd.DataFrame({"inclusion": top, "-log10 p": scan.loc[top.index, trait]}).round(3).to_string())
        rho = scipy.stats.spearmanr(pip[trait], scan[trait]).statistic
        print(f"rank correlation of inclusion and -log10 p over all SNPs: {rho:.2f}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sj.plot.inclusion(run, save=out / "inclusion_along_the_genome.png")
    print(f"\nplot written to {out}/inclusion_along_the_genome.png")


if __name__ == "__main__":
    main()
