"""Worked example: genetics of a growth curve by B-spline random regression (Arabidopsis grav2).

162 recombinant inbred lines (Ler x Cvi) whose root-tip angle was filmed every 2 minutes for 8
hours after a 90 degree turn (241 time points; Moore et al. 2013). Each line's curve is a B-spline
(``sj.obs.BSplineRegression``): its spline coefficients are the latent traits, with a genomic
relationship from the 234 markers (``sj.grm``) and factors on their covariance,

    angle_it = B(t) eta_i + e_it,   eta_i = mu + F_i Lambda + u_i + e_i,   e_it ~ N(0, sigma2).

``--thin-times`` keeps a random subset of each line's time points (different per line: uneven
sampling) to show the model with individuals observed at different times. ``--qtl`` adds the
markers genotyped on at least 80 % of the lines as fixed effects of the factors with a BayesC
prior (missing genotypes mean-filled, 10 cM windows of the genetic map): QTL for the factors of the curve, with inclusion probabilities per
marker and window and a plot along the genome.

Prints and plots (into ``--out``): the genetic covariance of the curve G(t, t') = B(t) G B(t')',
h2 along time, and the predicted genetic curves of a few lines with 90 % intervals.

    python examples/grav2_curves.py [--basis 8] [--factors 4] [--warmup 1000] [--samples 1000] [--out grav2_plots]
"""

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import slamjax as sj  # noqa: E402


def tall_angles(dataset, keep_fraction: float, seed: int = 0) -> pd.DataFrame:
    """One row per (line, time): columns id, hours, angle; a random share of each line's times."""
    Y = dataset.Y
    hours = np.asarray(Y.attrs["time_hours"], dtype=float)
    tall = pd.DataFrame({
        "id": np.repeat(Y.index.to_numpy(), Y.shape[1]),
        "hours": np.tile(hours, Y.shape[0]),
        "angle": Y.to_numpy(dtype=float).ravel(),
    })
    if keep_fraction < 1:
        tall = tall.sample(frac=keep_fraction, random_state=seed).sort_values(["id", "hours"], kind="stable")
    return tall.reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="grav2: B-spline random regression of root angle curves")
    parser.add_argument("--basis", type=int, default=8, help="B-spline basis functions (cubic)")
    parser.add_argument("--factors", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--thin-times", type=float, default=1.0, help="share of each line's time points kept")
    parser.add_argument("--out", default="grav2_plots")
    parser.add_argument("--qtl", action="store_true", help="markers on the factors with BayesC (QTL mapping)")
    args = parser.parse_args()

    grav2 = sj.datasets.load_grav2()
    tall = tall_angles(grav2, args.thin_times)
    curves = sj.obs.BSplineRegression(tall, time="hours", value="angle", individual="id", n_basis=args.basis)
    markers = {}
    if args.qtl:
        typed = grav2.markers.loc[:, grav2.markers.isna().mean() <= 0.2]  # markers genotyped on >= 80 % of lines
        markers = dict(markers=sj.markers.Markers(typed, missing="mean", max_missing=0.2, map=grav2.marker_map,
                                                  window=10.0),
                       marker_prior=sj.markers.BayesC(a=1, b=19))
    model = sj.Model(observation=curves, data=grav2.data, formula="~ 1 + (1|id)", relmat=grav2.relmat,
                     n_factors=args.factors, **markers)
    print(f"{len(tall)} observations of {tall['id'].nunique()} lines; {model}")
    started = time.perf_counter()
    run = sj.sample(model, num_warmup=args.warmup, num_samples=args.samples, num_chains=args.chains, seed=1,
                    record_genetic_values=True)
    print(f"sampled in {time.perf_counter() - started:.0f} s; residual sd of the angle "
          f"{np.sqrt(run.draws['residual_variance'].mean()):.2f} degrees")

    times = np.linspace(0.0, 8.0, 33)
    G_t = run.genetic_covariance_curve(times)
    h2_t = run.h2_curve(times)
    print("\nh2 of the root angle along time (hours):")
    print(h2_t.iloc[::4].round(3).to_string())
    sd = np.sqrt(np.diag(G_t.to_numpy()))
    correlation = G_t.to_numpy() / np.outer(sd, sd)
    print(f"\ngenetic correlation of the angle at 1 h with 4 h: {correlation[4, 16]:.2f}, with 8 h: {correlation[4, 32]:.2f}")

    predicted = run.predict_curves(times, interval=0.9)
    lines = list(grav2.Y.index[:4])

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 4))
    image = ax.imshow(correlation, origin="lower", extent=(0, 8, 0, 8), cmap="viridis", vmin=-1, vmax=1)
    ax.set(xlabel="hours", ylabel="hours", title="genetic correlation of the root angle")
    fig.colorbar(image)
    fig.savefig(out / "genetic_correlation.png", dpi=120, bbox_inches="tight")
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(times, h2_t.to_numpy())
    ax.set(xlabel="hours", ylabel="h2", ylim=(0, 1), title="heritability along time")
    fig.savefig(out / "h2_along_time.png", dpi=120, bbox_inches="tight")
    fig, ax = plt.subplots(figsize=(6, 4))
    for line in lines:
        curve = predicted[predicted["individual"] == line]
        ax.plot(curve["time"], curve["mean"], label=f"line {line}")
        ax.fill_between(curve["time"], curve["lower"], curve["upper"], alpha=0.2)
        observed = tall[tall["id"] == line]
        ax.plot(observed["hours"], observed["angle"], ".", ms=2, color=ax.lines[-1].get_color())
    ax.set(xlabel="hours", ylabel="root tip angle (degrees)", title="genetic curves, 90 % intervals")
    ax.legend()
    fig.savefig(out / "predicted_curves.png", dpi=120, bbox_inches="tight")
    print(f"\nplots written to {out}/: genetic_correlation.png, h2_along_time.png, predicted_curves.png")
    if args.qtl:
        windows = run.inclusion_probabilities("window").max(axis=1).sort_values(ascending=False)
        print("\nQTL windows (chromosome:start-end cM), largest inclusion probability over factors:")
        print(windows.head(8).round(3).to_string())
        by_factor = run.inclusion_probabilities("factor")
        print("\nmarkers with inclusion probability > 0.5 on some factor:")
        print(by_factor[by_factor.max(axis=1) > 0.5].round(2).to_string())
        sj.plot.inclusion(run, by="factor", save=out / "qtl_inclusion.png")
        print(f"plot written to {out}/qtl_inclusion.png")


if __name__ == "__main__":
    main()
