"""float64 against float32 runs ([10] item 2): seconds per sweep, and how far the posteriors differ.

For each size: seconds per sweep of the compiled loop (``run_warmup``, ``num_chains`` vmapped
chains, after ``burn`` sweeps) with the model's data and the states in float64 and in float32 (as ``sj.sample(...,
dtype=...)`` casts them; float32 compiled under ``jax.default_matmul_precision("highest")``, as a
run is), interleaved repeats, the minimum of each (a shared machine). Then, per size, one
``sj.sample`` runs per dtype (``--replicates``, each its own seed) and the differences of the
posterior means of h2, diag(G), diag(R) and 500 off-diagonal elements each of G and of R between
every pair of runs, in Monte Carlo standard errors (sd / sqrt(bulk ESS) of both runs): float32 is at
fault only where its pairs with float64 differ more than float64's pairs among themselves. Sizes: S (n = 500,
p = 100, 10 factors) and M (n = 1000, p = 1000, 40 factors), as benchmarks/speed.py.

    python benchmarks/float32.py [--sizes S M] [--chains 4] [--sweeps 10 3] [--repeats 3] [--burn 20]
                                 [--warmup 500] [--samples 500] [--replicates 2]
                                 [--skip-posterior]
"""

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import slamjax as sj  # noqa: E402
from slamjax._dtype import cast_floats, matmul_precision  # noqa: E402
from slamjax.sampler import run_warmup  # noqa: E402
from slamjax.state import init_state  # noqa: E402

SIZES = {
    "S": dict(n=500, p=100, k=5, factors=10),
    "M": dict(n=1000, p=1000, k=20, factors=40),
}
DTYPES = ("float64", "float32")


def sweep_timer(model: sj.Model, dtype: str, chains: int, sweeps: int, burn: int):
    """(A function of the starting sweep t that runs ``sweeps`` sweeps of ``chains`` chains in ``dtype``
    and returns the seconds per sweep, the seconds to compile it). Timed from the states after
    ``burn`` sweeps (the first sweeps from the starting state are slower: rejection samplers)."""
    keys = jax.random.split(jax.random.key(0), chains)
    data = cast_floats(model.data, dtype)
    states = cast_floats(jax.vmap(init_state, in_axes=(0, None))(keys, model.data), dtype)
    started = time.perf_counter()
    with matmul_precision(dtype):
        states, _ = run_warmup(data, states, keys, 0, burn)
    jax.block_until_ready(states)
    compile_seconds = time.perf_counter() - started

    def run(t: int) -> float:
        start = time.perf_counter()
        with matmul_precision(dtype):
            out, _ = run_warmup(data, states, keys, t, t + sweeps)
        jax.block_until_ready(out)
        return (time.perf_counter() - start) / sweeps

    return run, compile_seconds


# off-diagonal elements of G and of R compared per size (pairs drawn once, the same for both dtypes)
PAIRS = 500


def _covariance_records(p: int) -> dict:
    """User records (standardised scale, one random effect): diag(G), diag(R) and ``PAIRS`` off-diagonal
    elements of G and of R per draw, O(k p) each, without the p x p matrices."""
    import jax.numpy as jnp

    from slamjax.posterior import _loadings, _variances

    rows, cols = np.triu_indices(p, 1)
    chosen = np.random.default_rng(0).choice(rows.size, size=min(PAIRS, rows.size), replace=False)
    i, j = jnp.asarray(rows[chosen]), jnp.asarray(cols[chosen])

    def parts(state, data):
        loadings = _loadings(state)  # (k, p)
        F_h2 = data.h2_grid[state.F_h2_index][:, 0]  # (k,)
        return loadings, F_h2

    def G_pairs(state, data):
        loadings, F_h2 = parts(state, data)
        return jnp.sum(loadings[:, i] * F_h2[:, None] * loadings[:, j], axis=0)

    def R_pairs(state, data):
        loadings, F_h2 = parts(state, data)
        return jnp.sum(loadings[:, i] * (1.0 - F_h2)[:, None] * loadings[:, j], axis=0)

    def diag_G(state, data):
        return _variances(state, data)[0][0]

    def diag_R(state, data):
        diag_G_, diag_P = _variances(state, data)
        return diag_P - diag_G_[0]

    return {"diag_G": diag_G, "diag_R": diag_R, "G_pairs": G_pairs, "R_pairs": R_pairs}


QUANTITIES = ("h2", "diag_G", "diag_R", "G_pairs", "R_pairs")


def posterior_means(model: sj.Model, dtype: str, chains: int, warmup: int, samples: int, seed: int):
    """{quantity: (posterior means, Monte Carlo standard errors sd / sqrt(bulk ESS))} of h2, diag(G),
    diag(R) and the sampled off-diagonal elements of G and R, and the run's seconds."""
    import arviz as az

    started = time.perf_counter()
    run = sj.sample(model, num_warmup=warmup, num_samples=samples, num_chains=chains, seed=seed, progress=False,
                    dtype=dtype, record_covariances=False, record=_covariance_records(len(model.trait_names)))
    seconds = time.perf_counter() - started
    out = {}
    for name in QUANTITIES:
        draws = np.asarray(run.draws[name], np.float64)  # (chains, draws, m)
        ess = np.asarray(az.ess(az.convert_to_dataset({"x": draws}))["x"])
        out[name] = (draws.mean(axis=(0, 1)), draws.reshape(-1, draws.shape[-1]).std(axis=0) / np.sqrt(ess), ess)
    return out, seconds


def compare_posteriors(size: str, model: sj.Model, args) -> None:
    """Prints, per quantity, |mean_a - mean_b| in Monte Carlo standard errors (z, with
    sqrt(se_a^2 + se_b^2)) over pairs of independent runs (``args.replicates`` seeds per dtype):
    pairs of float64 runs (the control), pairs of float32 runs, and float64 against float32.
    Independent estimates of one posterior give z about N(0, 1) when the standard errors hold
    (P(|z| > 3) = 0.27 %, median |z| 0.67); where slow elements make sd / sqrt(ESS) too small every
    kind of pair exceeds that alike, and the z of one pair are correlated through the shared factors,
    so float32 is judged by its cross pairs against the control pairs, averaged over pairs."""
    import itertools

    runs, seconds = {}, {}
    for dtype in DTYPES:
        for replicate in range(args.replicates):
            runs[dtype, replicate], s = posterior_means(model, dtype, args.chains, args.warmup, args.samples,
                                                        seed=100 * replicate + DTYPES.index(dtype))
            seconds.setdefault(dtype, []).append(s)
    pairs = {
        "float64 vs float64": list(itertools.combinations([("float64", r) for r in range(args.replicates)], 2)),
        "float32 vs float32": list(itertools.combinations([("float32", r) for r in range(args.replicates)], 2)),
        "float64 vs float32": [(("float64", a), ("float32", b)) for a in range(args.replicates)
                               for b in range(args.replicates)],
    }
    print(f"{size} posterior means: {args.replicates} runs per dtype of {args.chains} chains x {args.samples} draws "
          f"after {args.warmup} warm-up (" + ", ".join(f"{d} {np.mean(v):.0f} s" for d, v in seconds.items())
          + "); per pair of runs, averaged over the pairs:")
    print(f"{'':>4} {'pairs':>22} {'quantity':>8} {'count':>6} {'min ESS':>8} {'max |z|':>8} {'|z|>3':>6} "
          f"{'median |z|':>10} {'max rel diff':>12}")
    for label, members in pairs.items():
        if not members:
            continue
        for name in QUANTITIES:
            rows = []
            for a, b in members:
                (m_a, se_a, e_a), (m_b, se_b, e_b) = runs[a][name], runs[b][name]
                z = np.abs(m_a - m_b) / np.sqrt(se_a**2 + se_b**2)
                rows.append((min(e_a.min(), e_b.min()), z.max(), np.mean(z > 3), np.median(z),
                             (np.abs(m_a - m_b) / np.maximum(np.abs(m_a), 1e-12)).max(), z.size))
            ess, z_max, beyond, median, relative, count = np.mean(rows, axis=0)
            print(f"{'':>4} {f'{label} ({len(members)})':>22} {name:>8} {count:>6.0f} {ess:>8.0f} {z_max:>8.2f} "
                  f"{beyond:>6.3f} {median:>10.2f} {relative:>12.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["S", "M"], choices=list(SIZES))
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--sweeps", nargs="+", type=int, default=[10, 3], help="sweeps per timing, per size")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=500, help="warm-up sweeps of the posterior runs")
    parser.add_argument("--samples", type=int, default=500, help="draws of the posterior runs")
    parser.add_argument("--burn", type=int, default=20, help="sweeps before the timings")
    parser.add_argument("--replicates", type=int, default=2, help="posterior runs per dtype")
    parser.add_argument("--skip-posterior", action="store_true", help="timings only")
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({jax.default_backend()}), "
          f"{args.chains} chains")
    print(f"{'size':>4} {'n':>5} {'p':>5} {'k':>3} {'dtype':>8} {'compile+burn s':>14} {'s/sweep':>9} {'speed-up':>8}")
    for size, sweeps in zip(args.sizes, args.sweeps + args.sweeps[-1:] * len(args.sizes)):
        spec = SIZES[size]
        ds = sj.datasets.simulate(n=spec["n"], p=spec["p"], k=spec["k"], seed=0)
        model = sj.Model(Y=ds.Y, K=ds.relmat["id"], n_factors=spec["factors"], h2_divisions=20)
        timers = {dtype: sweep_timer(model, dtype, args.chains, sweeps, args.burn) for dtype in DTYPES}
        timings = {dtype: [] for dtype in DTYPES}
        for repeat in range(args.repeats):  # interleaved: both dtypes see the same machine load
            for dtype in DTYPES:
                timings[dtype].append(timers[dtype][0](args.burn + repeat * sweeps))
        best = {dtype: min(values) for dtype, values in timings.items()}
        for dtype in DTYPES:
            print(f"{size:>4} {spec['n']:>5} {spec['p']:>5} {spec['factors']:>3} {dtype:>8} {timers[dtype][1]:>14.1f} "
                  f"{best[dtype]:>9.4f} {best['float64'] / best[dtype]:>7.2f}x", flush=True)
        if not args.skip_posterior:
            compare_posteriors(size, model, args)

if __name__ == "__main__":
    main()
