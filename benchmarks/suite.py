"""The benchmark suite ([10] item 5): one command, one row per case, JSON and a Markdown table.

Each case is simulated (``sj.datasets.simulate``), fitted with the defaults by ``sj.sample`` in a
fresh process (so that compile time and peak memory are its own), and reported as:

* compile: seconds of the first chunk beyond its sweeps at the steady rate (tracing and XLA);
* s/sweep: seconds per sweep of all chains at the steady rate (chunks after the first);
* peak host memory (ru_maxrss) and peak device memory (``memory_stats``; on a CPU the device is
  the host's memory, reported as n/a);
* bulk ESS per second of sampling, minimum and median, over h2 and over diag(G) of every random
  effect (diag(G) recorded per draw by a user function), from a run of the case's length;
* share of peak: the sweep's multiply-adds of its dominant terms (``slamjax._costs.sweep_cost``,
  unweighted, times 2 flops, times chains) per second, over the float GEMM rate measured on
  the same device in the same process (a 2048 x 2048 matmul, best of 5).

Cases: S (n = 500, p = 100, 10 factors), M (1000, 1000, 40), L (2000, 5000, 100), A (the
Arabidopsis size of MegaLMM's 18-hour fit: n = 665, p = 20,842, 166 factors), ``several`` (S
with a second, iid random effect of 50 groups) and ``missing`` (S with 50 % of cells missing).
L and A are for accelerators: on the 2-core CPU a sweep of L takes ~7 s with 4 chains.

    python benchmarks/suite.py [--cases S several missing M] [--chains 4] [--scale 1.0]
                               [--out benchmarks/results]
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

CASES = {
    "S": dict(n=500, p=100, k=5, factors=10, warmup=500, samples=1000),
    "M": dict(n=1000, p=1000, k=20, factors=40, warmup=300, samples=300),
    "L": dict(n=2000, p=5000, k=30, factors=100, warmup=300, samples=300),
    "A": dict(n=665, p=20842, k=50, factors=166, warmup=1000, samples=1000),
    "several": dict(n=500, p=100, k=5, factors=10, groups=50, warmup=500, samples=1000),
    "missing": dict(n=500, p=100, k=5, factors=10, fraction_missing=0.5, warmup=500, samples=1000),
}


def _gemm_rate(dtype) -> float:
    """Flops per second of a 2048 x 2048 matmul on the default device, best of 5."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (2048, 2048), dtype=dtype)
    product = jax.jit(lambda x: x @ x)
    product(a).block_until_ready()
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        product(a).block_until_ready()
        best = min(best, time.perf_counter() - started)
    return 2 * 2048**3 / best


def one(name: str, chains: int, scale: float) -> dict:
    """Fits case ``name`` in this process and returns its row."""
    import resource

    import jax

    jax.config.update("jax_enable_x64", True)
    import arviz as az
    import jax.numpy as jnp
    import numpy as np

    import slamjax as sj
    from slamjax._costs import sweep_cost
    from slamjax.posterior import _variances

    spec = CASES[name]
    warmup, samples = max(1, int(spec["warmup"] * scale)), max(2, int(spec["samples"] * scale))
    started = time.perf_counter()
    ds = sj.datasets.simulate(n=spec["n"], p=spec["p"], k=spec["k"], seed=0,
                              fraction_missing=spec.get("fraction_missing", 0.0), n_groups=spec.get("groups"))
    if "groups" in spec:
        model = sj.Model(Y=ds.Y, data=ds.data, formula="~ 1 + (1|id) + (1|group)", relmat={"id": ds.relmat["id"]},
                         n_factors=spec["factors"])
    else:
        model = sj.Model(Y=ds.Y, K=ds.relmat["id"], n_factors=spec["factors"])
    setup = time.perf_counter() - started
    with jax.enable_x64(True):
        gemm = _gemm_rate(jnp.float64)
    marks = []
    chunk = min(100, samples, warmup)  # warm-up and draws in chunks of the same number of sweeps
    call = time.perf_counter()
    run = sj.sample(model, num_warmup=warmup, num_samples=samples, num_chains=chains, seed=0, progress=False,
                    chunk_size=chunk, callback=lambda progress: marks.append((progress["sweeps_done"],
                                                                              time.perf_counter())),
                    record={"G_diag": lambda state, data: _variances(state, data)[0]})
    total = time.perf_counter() - call
    (first_sweeps, first_time), (last_sweeps, last_time) = marks[0], marks[-1]
    per_sweep = (last_time - first_time) / max(last_sweeps - first_sweeps, 1)
    compile_seconds = (first_time - call) - first_sweeps * per_sweep
    sampling_seconds = samples * per_sweep
    posterior = {"h2": run.draws["h2"], "G_diag": run.draws["G_diag"]}
    ess = az.ess(az.from_dict({"posterior": posterior}))
    row = dict(case=name, n=spec["n"], p=spec["p"], factors=spec["factors"], chains=chains, warmup=warmup,
               samples=samples, backend=model.backend, h2_draw=model.h2_draw, setup_s=setup,
               compile_s=compile_seconds, s_per_sweep=per_sweep, total_s=total,
               covariance_every=run.settings["covariance_every"], record_loadings=run.settings["record_loadings"])
    for key in posterior:
        values = np.asarray(ess[key]).ravel()
        row[f"{key}_ess_min_per_s"] = float(values.min() / sampling_seconds)
        row[f"{key}_ess_median_per_s"] = float(np.median(values) / sampling_seconds)
    flops = 2 * chains * sum(sweep_cost(model.data, factorisation_weight=1.0).values())
    stats = jax.devices()[0].memory_stats() or {}
    row.update(
        peak_host_GiB=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        peak_device_GiB=stats["peak_bytes_in_use"] / 2**30 if "peak_bytes_in_use" in stats else None,
        gemm_GFLOPs=gemm / 1e9, sweep_GFLOP=flops / 1e9, share_of_peak=flops / per_sweep / gemm,
        device=f"{jax.devices()[0].device_kind} ({jax.default_backend()})",
    )
    return row


def _table(rows: list[dict]) -> str:
    def number(value, digits=3):
        return "n/a" if value is None else f"{value:.{digits}g}"

    lines = [
        "| case | n | p | factors | compile s | s/sweep | peak host GiB | peak device GiB | h2 ESS/s min / median "
        "| diag(G) ESS/s min / median | share of GEMM peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['n']} | {r['p']} | {r['factors']} | {number(r['compile_s'])} | "
            f"{number(r['s_per_sweep'])} | {number(r['peak_host_GiB'])} | {number(r['peak_device_GiB'])} | "
            f"{number(r['h2_ess_min_per_s'])} / {number(r['h2_ess_median_per_s'])} | "
            f"{number(r['G_diag_ess_min_per_s'])} / {number(r['G_diag_ess_median_per_s'])} | "
            f"{100 * r['share_of_peak']:.1f} % |"
        )
    first = rows[0] if rows else {}
    lines.append("")
    lines.append(f"{first.get('device', '')}, float64, {first.get('chains', '')} chains; "
                 "lengths (warm-up + draws) per case: "
                 + ", ".join(f"{r['case']} {r['warmup']} + {r['samples']}" for r in rows))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["S", "several", "missing", "M"], choices=list(CASES))
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every case's warm-up and draws")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # the child process: one case, its row as JSON on the last line
        print(json.dumps(one(args.one, args.chains, args.scale)))
        return
    rows = []
    for name in args.cases:
        result = subprocess.run([sys.executable, __file__, "--one", name, "--chains", str(args.chains),
                                 "--scale", str(args.scale)], capture_output=True, text=True)
        if result.returncode != 0:
            print(f"{name}: failed\n{result.stderr[-3000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "suite.json").write_text(json.dumps(rows, indent=1))
    table = _table(rows)
    (out / "suite.md").write_text(table + "\n")
    print("\n" + table)


if __name__ == "__main__":
    main()
