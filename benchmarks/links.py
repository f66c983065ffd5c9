"""What an observation model costs per sweep: the same model (benchmarks/speed.py's sizes) observed
as complete Gaussian data (step 9 skipped), through voom weights (``sj.obs.Voom``: every latent cell
drawn, with the rotation to and from the random effect's coordinates) and through 3 probes per
gene (``sj.obs.Probes``). Target: voom at most 10 % of a sweep on M (n = 1000, p = 1000).

Three shares per link: over complete Gaussian data (t_link - t_gaussian) / t_link; over Gaussian
data with 5 % missing cells, which draws latent cells and pays the same two rotations
(t_link - t_missing) / t_link, the link's own cost; and the two rotations alone (two n x n by n x p
products, 2 n^2 p multiply-adds), which every latent Eta needs with the eigen random effect.

    python benchmarks/links.py [--sizes S M] [--iterations 30]
"""

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import slamjax as sj  # noqa: E402
from speed import SIZES, seconds_per_iteration  # noqa: E402


def links(frame: pd.DataFrame, seed: int = 0) -> dict:
    """Observation models of the simulated latent traits (individuals x traits)."""
    rng = np.random.default_rng(seed)
    n, p = frame.shape
    Y = frame.to_numpy(dtype=float)
    genes = list(frame.columns)
    weights = pd.DataFrame(rng.uniform(0.5, 20.0, size=(n, p)), index=frame.index, columns=genes)  # as bottomly's
    probes = pd.DataFrame(np.repeat(Y, 3, axis=1) + rng.normal(size=(n, 3 * p)) * 0.5, index=frame.index,
                          columns=[f"probe{m}" for m in range(3 * p)])
    missing = frame.mask(rng.random(size=(n, p)) < 0.05)
    return {
        "gaussian": sj.obs.Gaussian(frame),
        "gaussian, 5% missing": sj.obs.Gaussian(missing),
        "voom": sj.obs.Voom(logcpm=frame, weights=weights),
        "probes (3 per gene)": sj.obs.Probes(probes, np.repeat(genes, 3)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["S", "M"], choices=list(SIZES))
    parser.add_argument("--iterations", type=int, default=30)
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({jax.default_backend()}), float64, 1 chain")
    print(f"{'size':>4} {'link':>20} {'s/it':>9} {'vs complete':>10} {'vs missing':>10} {'rotations':>10}")
    for size in args.sizes:
        spec = SIZES[size]
        ds = sj.datasets.simulate(n=spec["n"], p=spec["p"], k=spec["k"], seed=0)
        times = {}
        for name, observation in links(ds.Y).items():
            model = sj.Model(observation=observation, K=ds.relmat["id"], n_factors=spec["factors"], h2_divisions=20)
            seconds = times[name] = seconds_per_iteration(model, 1, args.iterations)
            shares = [f"{(seconds - times[base]) / seconds:>9.1%}" if name not in bases else ""
                      for base, bases in (("gaussian", ["gaussian"]), ("gaussian, 5% missing", ["gaussian", "gaussian, 5% missing"]))]
            rotation = "" if name == "gaussian" else f"{rotation_seconds(model) / seconds:>9.1%}"
            print(f"{size:>4} {name:>20} {seconds:>9.4f} {shares[0]:>10} {shares[1]:>10} {rotation:>10}", flush=True)


def rotation_seconds(model: sj.Model, repeats: int = 20) -> float:
    """Seconds of the two rotations a latent Eta costs per sweep: unrotate the linear predictor,
    rotate the new Eta (median of ``repeats``)."""
    re = model.data.re
    x = jax.numpy.asarray(np.random.default_rng(1).normal(size=model.data.Y_start.shape))
    both = jax.jit(lambda x: re.rotate(re.unrotate(x) + 1.0))
    jax.block_until_ready(both(x))
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(both(x))
        timings.append(time.perf_counter() - start)
    return float(np.median(timings))


if __name__ == "__main__":
    main()
