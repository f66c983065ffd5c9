"""Time to the first draw, and where it goes: tracing, XLA's compile, a sweep.

For each case (4 chains by default), in a fresh process each time (nothing compiled or cached
before, no persistent compilation cache):

* ``first draw``: ``sj.sample(model, num_warmup=0, num_samples=1)`` from the call to its return
  (initial states, tracing, compiling the sampling loop, one sweep, the record);
* ``trace``, ``compile``: tracing and lowering the sampling loop, then XLA's compile of it
  (``run_draws.lower(...)``, ``.compile()``), measured on their own in the same process before;
* ``sweep``: milliseconds per sweep of all chains after compilation (median of 3 x 200 sweeps).

``--phases`` also traces XLA's compile with ``jax.profiler`` and prints where it went: HLO
passes, the fusion emitters (kernels and their CPU seconds, summed over the codegen threads), LLVM
code generation (wall seconds, functions compiled) and the thunk emitter.

``--threefry rolled`` compiles with JAX's own CPU rule for Threefry (a loop) instead of slamjax's
unrolled one (slamjax/_lowering.py), to compare. Runs alternate between the variants, so a
slow spell of a shared machine hits both.

    python benchmarks/compile_time.py                          # cases T and S, unrolled, 1 run
    python benchmarks/compile_time.py --cases S --threefry rolled unrolled --repeats 3
    python benchmarks/compile_time.py --cases T --threefry rolled unrolled --phases
"""

import argparse
import json
import subprocess
import sys
import time

CASES = {  # n, p, true factors, fitted factors (mixing.py's T and S; speed.py's M)
    "T": (200, 20, 3, 6),
    "S": (500, 100, 5, 10),
    "M": (1000, 1000, 20, 40),
}


def _compile_phases(trace_dir: str) -> dict:
    """Seconds of XLA's compile phases from a jax.profiler trace of one compile."""
    import glob

    import jax

    path = glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True)[0]
    totals, counts, functions = {}, {}, 0
    for plane in jax.profiler.ProfileData.from_file(path).planes:
        for line in plane.lines:
            for event in line.events:
                totals[event.name] = totals.get(event.name, 0.0) + event.duration_ns / 1e9
                counts[event.name] = counts.get(event.name, 0) + 1
                if event.name == "Codegen":
                    functions = int(dict(event.stats).get("num_compiled_functions", 0))
    hlo = sum(v for name, v in totals.items() if name.startswith("HLO passes"))
    return dict(hlo_passes_s=hlo, fusion_kernels=counts.get("FusionCompiler::Compile", 0),
                fusion_cpu_s=totals.get("FusionCompiler::Compile", 0.0), llvm_codegen_s=totals.get("Codegen", 0.0),
                llvm_functions=functions, thunks_s=totals.get("ThunkEmitter::EmitEntryComputation", 0.0))


def _one(case: str, threefry: str, chains: int, phases: bool = False) -> dict:
    """One measurement in this (fresh) process."""
    started = time.perf_counter()
    import jax
    import jax.numpy as jnp
    import numpy as np

    import slamjax as sj
    import slamjax._lowering as lowering
    from slamjax.posterior import record_function, running_template
    from slamjax.sampler import run_draws, run_warmup
    from slamjax.state import init_state

    if threefry == "rolled":
        lowering.active = lambda: False
    imported = time.perf_counter() - started
    n, p, k, factors = CASES[case]
    ds = sj.datasets.simulate(n=n, p=p, k=k, seed=1)
    model = sj.Model(Y=ds.Y, data=ds.data, formula="~ 1 + (1|id)", relmat={"id": ds.relmat["id"]},
                     n_factors=factors, h2_divisions=20)
    out = dict(case=case, threefry=threefry, chains=chains, import_s=imported)

    start = time.perf_counter()
    sj.sample(model, num_warmup=0, num_samples=1, num_chains=chains, progress=False)
    out["first_draw_s"] = time.perf_counter() - start

    with jax.enable_x64(True), lowering.unrolled_threefry():  # the loop of a default run, alone
        data = model.data
        keys = jax.random.split(jax.random.key(1), chains)
        states = jax.vmap(init_state, in_axes=(0, None))(keys, data)
        record = record_function(p <= 100, False, ())
        accumulators = jax.tree.map(lambda x: jnp.zeros((chains,) + x.shape), running_template(data))
        run_draws.clear_cache()
        start = time.perf_counter()
        lowered = run_draws.lower(data, states, keys, accumulators, 0, 1, 1, False, 0, num_draws=100,
                                  record_fn=record)
        out["trace_s"] = time.perf_counter() - start
        if phases:
            import tempfile

            with tempfile.TemporaryDirectory() as trace_dir:
                with jax.profiler.trace(trace_dir):
                    start = time.perf_counter()
                    lowered.compile()
                    out["compile_s"] = time.perf_counter() - start
                out.update(_compile_phases(trace_dir))
        else:
            start = time.perf_counter()
            lowered.compile()
            out["compile_s"] = time.perf_counter() - start
        sweeps = 200 if case != "M" else 20
        states, _ = run_warmup(data, states, keys, 0, 2, accumulators=accumulators, num_draws=100,
                               record_fn=record)
        timings = []
        for _ in range(3):
            start = time.perf_counter()
            states, _ = run_warmup(data, states, keys, 0, sweeps, accumulators=accumulators, num_draws=100,
                                   record_fn=record)
            jax.block_until_ready(states)
            timings.append((time.perf_counter() - start) / sweeps)
        out["sweep_ms"] = 1000 * float(np.median(timings))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["T", "S"], choices=list(CASES))
    parser.add_argument("--threefry", nargs="+", default=["unrolled"], choices=["unrolled", "rolled"])
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--phases", action="store_true", help="trace XLA's compile and print its phases")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # internal: CASE THREEFRY in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_one(args.one[0], args.one[1], args.chains, args.phases)))
        return
    rows = []
    print(f"{'case':4} {'threefry':9} {'import s':>8} {'first draw s':>12} {'trace s':>8} {'compile s':>9} "
          f"{'sweep ms':>9}", flush=True)
    for case in args.cases:
        for _ in range(args.repeats):
            for threefry in args.threefry:
                result = subprocess.run([sys.executable, __file__, "--one", case, threefry, "--chains",
                                         str(args.chains), *(["--phases"] if args.phases else [])],
                                        capture_output=True, text=True, check=True)
                row = json.loads(result.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(f"{case:4} {threefry:9} {row['import_s']:8.2f} {row['first_draw_s']:12.2f} "
                      f"{row['trace_s']:8.2f} {row['compile_s']:9.2f} {row['sweep_ms']:9.2f}", flush=True)
                if args.phases:
                    print(f"     compile phases: HLO passes {row['hlo_passes_s']:.2f} s; {row['fusion_kernels']} fusion "
                          f"kernels emitted in {row['fusion_cpu_s']:.2f} CPU s; LLVM codegen {row['llvm_codegen_s']:.2f} s "
                          f"for {row['llvm_functions']} functions; thunks {row['thunks_s']:.2f} s", flush=True)


if __name__ == "__main__":
    main()
