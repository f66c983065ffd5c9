"""Mixing judged by the slowest parameter: bulk ESS over every element of G, of R and of h2, per
sweep variant (step 0e's exchange and rescaling moves, step 0o's factor swaps, the collapsed h2 draw, step 5m, the factors' rotation step and
its shears on or off), on simulated data
of two sizes and on the bundled wheat and mice data.

For each case and variant: the minimum, 1st percentile and median bulk ESS of the elements of G
(upper triangle, diagonal included), of R and of h2, per 1000 sweeps per chain and per second of
sampling (compilation excluded by a short run first, with the run's chunk of 100 draws) and per
second from the call (compilation included), the largest R-hat, seconds per sweep, the compile
time, and the five slowest elements by name.

    python benchmarks/mixing.py                              # cases S and T, every variant
    python benchmarks/mixing.py --cases S --variants default norotation
    python benchmarks/mixing.py --cases wheat mice --variants default
    python benchmarks/mixing.py --cases T --variants default --diagnose   # what moves with the slowest G

``--diagnose``: for the slowest element of G, its chain means against its posterior sd (stuck chains
or slow drift) and the correlation of its trace with the quantities it is built from: both traits'
h2 and total precision, each aligned factor's F_h2, and each aligned factor's loading product.

Cases (4 chains each): S n = 500, p = 100, 5 true / 10 fitted factors, 500 + 1000 sweeps;
T n = 200, p = 20, 3 true / 6 fitted factors, 1000 + 1000 sweeps; wheat (the demo's model and
lengths: 3000 + 5000 sweeps thinned by 5); mice (examples/mice_variance_components.py's model,
20 traits and 3 random effects, 1000 + 2000 sweeps by default: long).
"""

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import arviz as az  # noqa: E402
import numpy as np  # noqa: E402

import slamjax as sj  # noqa: E402

VARIANTS = {  # name: Model keyword arguments (the default h2 draw is "auto": the model prints which)
    "default": {},
    "exchange": {"exchange_factors": True},
    "rescale": {"rescale_factors": True},
    "exchange_rescale": {"exchange_factors": True, "rescale_factors": True},
    "noswap": {"swap_factors": False},
    "norotation": {"rotate_factors": False},
    "noshear": {"shear_factors": False},
    "given_F": {"factor_h2_draw": "given_F"},
    "collapsed_h2": {"h2_draw": "collapsed"},
    "conditional_h2": {"h2_draw": "conditional"},
    "megalmm": {"h2_draw": "conditional", "rotate_factors": False, "factor_h2_draw": "given_F",
                "exchange_factors": False, "rescale_factors": False, "swap_factors": False},
}


def _case(name: str):
    """(model keyword arguments, sampling lengths) of a case."""
    if name in ("S", "T"):
        n, p, k, factors = (500, 100, 5, 10) if name == "S" else (200, 20, 3, 6)
        ds = sj.datasets.simulate(n=n, p=p, k=k, seed=1)
        lengths = dict(num_warmup=500 if name == "S" else 1000, num_samples=1000, thin=1)
        return dict(Y=ds.Y, data=ds.data, formula="~ 1 + (1|id)", relmat={"id": ds.relmat["id"]},
                    n_factors=factors, h2_divisions=20), lengths
    if name == "wheat":
        ds = sj.datasets.load_wheat()
        return dict(Y=ds.Y, K=ds.relmat["line"], n_factors=2, h2_divisions=20), \
            dict(num_warmup=3000, num_samples=1000, thin=5)
    if name == "mice":
        ds = sj.datasets.load_mice(markers=False)
        grid = sj.h2_grid(3, 10)
        return dict(Y=ds.Y, data=ds.data, formula="~ GENDER + season + (1|mouse) + (1|cage) + (1|Litter)",
                    relmat={"mouse": ds.relmat["mouse"]}, n_factors=10, h2_divisions=10,
                    priors=sj.Priors(F_h2=1.0 * (grid[:, 2] == 0))), dict(num_warmup=1000, num_samples=2000, thin=1)
    raise ValueError(f"unknown case {name!r}")


def _elements(run, function, name: str) -> tuple[np.ndarray, list[str]]:
    """``function`` (az.ess or az.rhat) of every element of G / R (upper triangle) or h2, with names."""
    values = function(run.datatree, var_names=[name])[name].to_numpy()
    traits = list(run.model.trait_names)
    if name in ("G", "R"):
        if values.ndim == 3:  # several random effects: (effect, trait, trait2)
            effects = list(run.model.effect_names)
            upper = np.triu_indices(len(traits))
            labels = [f"G[{e}][{traits[i]},{traits[j]}]" for e in effects for i, j in zip(*upper)]
            return np.concatenate([v[upper] for v in values]), labels
        upper = np.triu_indices(len(traits))
        return values[upper], [f"{name}[{traits[i]},{traits[j]}]" for i, j in zip(*upper)]
    labels = [f"h2[{t}]" for t in traits] if values.ndim == 1 else \
        [f"h2[{e}][{t}]" for e in run.model.effect_names for t in traits]  # (effect, trait)
    return values.ravel(), labels


def diagnose(run, ess: np.ndarray) -> None:
    """What moves with the slowest off-diagonal element of G (module docstring)."""
    posterior = run.datatree.posterior
    G = posterior["G"].to_numpy()
    if G.ndim != 4:
        print("  --diagnose: one random effect only")
        return
    p = G.shape[-1]
    full = np.full((p, p), np.inf)
    full[np.triu_indices(p, 1)] = ess[np.triu_indices(p)[0] != np.triu_indices(p)[1]]  # off-diagonal only
    i, j = np.unravel_index(np.argmin(full), full.shape)
    trace = G[:, :, i, j]
    traits = list(run.model.trait_names)
    print(f"  slowest off-diagonal G[{traits[i]},{traits[j]}]: chain means "
          f"{np.array2string(trace.mean(axis=1), precision=3)}, posterior sd {trace.std():.3f}")
    candidates = {}
    for name in ("h2", "tot_Eta_prec"):
        if name in posterior:
            values = posterior[name].to_numpy()
            candidates[f"{name}[{traits[i]}]"], candidates[f"{name}[{traits[j]}]"] = values[..., i], values[..., j]
    aligned = run.posterior
    if "F_h2" in aligned:
        F_h2 = aligned["F_h2"].to_numpy()
        for l in range(F_h2.shape[-1]):
            candidates[f"F_h2[factor{l}]"] = F_h2[..., l]
    if "Lambda" in aligned:
        Lambda = aligned["Lambda"].to_numpy()  # (chain, draw, factor, trait)
        for l in range(Lambda.shape[-2]):
            candidates[f"Lambda[factor{l},{traits[i]}] x Lambda[factor{l},{traits[j]}]"] = Lambda[..., l, i] * Lambda[..., l, j]
    for name, values in candidates.items():
        correlation = np.corrcoef(trace.ravel(), values.ravel())[0, 1]
        print(f"    {name:>48}: correlation {correlation:+.2f}, bulk ESS {float(az.ess(values)):7.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["S", "T"], choices=["S", "T", "wheat", "mice"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--diagnose", action="store_true", help="what moves with the slowest element of G")
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}, {args.chains} chains; bulk ESS per 1000 "
          "sweeps per chain (min / 1st percentile / median) and the minimum per second of sampling")
    for case in args.cases:
        arguments, lengths = _case(case)
        for variant in args.variants:
            model = sj.Model(**arguments, **VARIANTS[variant])
            options = dict(num_chains=args.chains, seed=args.seed, progress=False, record_covariances=True)
            # compile: the same chunk of 100 draws as the run below (another chunk size recompiles)
            started = time.perf_counter()
            sj.sample(model, num_warmup=2, num_samples=100, thin=lengths["thin"], **options)
            first_call = time.perf_counter() - started
            started = time.perf_counter()
            run = sj.sample(model, **lengths, **options)
            seconds = time.perf_counter() - started
            sweeps = lengths["num_warmup"] + lengths["num_samples"] * lengths["thin"]
            recorded_sweeps = lengths["num_samples"] * lengths["thin"]
            sampling_seconds = seconds * recorded_sweeps / sweeps
            compile_seconds = first_call - seconds * (2 + 100 * lengths["thin"]) / sweeps
            print(f"\n{case} {variant} (h2 draw {model.h2_draw}, factor h2 {model.factor_h2_draw}, "
                  f"rotation {model.data.rotate_factors}): "
                  f"{seconds / sweeps * 1e3:.2f} ms per sweep, compile {compile_seconds:.0f} s")
            slowest = []
            for name in ("G", "R", "h2"):
                ess, labels = _elements(run, az.ess, name)
                if name == "G":
                    G_ess = ess
                rhat, _ = _elements(run, az.rhat, name)
                per_1000 = 1000 * ess / (recorded_sweeps * args.chains)
                print(f"  {name:>2} ({len(ess):>5} elements): ESS/1000 sweeps/chain min {per_1000.min():7.1f}  "
                      f"1% {np.percentile(per_1000, 1):7.1f}  median {np.median(per_1000):7.1f};  "
                      f"min ESS/s {ess.min() / sampling_seconds:8.1f} (from the call "
                      f"{ess.min() / (compile_seconds + seconds):6.1f});  max R-hat {rhat.max():.3f}", flush=True)
                slowest += list(zip(ess, labels))
            slowest.sort()
            print("  slowest: " + ", ".join(f"{label} {value:.0f}" for value, label in slowest[:5]))
            if args.diagnose:
                diagnose(run, G_ess)


if __name__ == "__main__":
    main()
