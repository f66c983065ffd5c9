"""The cost of the records against the sweep, by size ([10] item 1: under 10 % at every size).

For each size: the record plan ``sj.sample`` would choose (what is kept per draw, every how many
draws the running means of G and R are taken, bytes), then seconds per sweep of the compiled loop
without records (warm-up), with the plan's records, and with G and R averaged over every draw
(the behaviour before size-aware records); interleaved, the minimum of the repeats. Sizes are
the issue's S, M and L, and A (the Arabidopsis size: n = 665, p = 20,842, 166 factors; for
accelerators). 4 chains, float64.

    python benchmarks/records.py [--sizes S M L] [--chains 4] [--draws 10] [--repeats 5]
"""

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

import slamjax as sj  # noqa: E402
from slamjax._costs import covariance_record_cost, record_cost, sweep_cost  # noqa: E402
from slamjax._records import plan_records  # noqa: E402
from slamjax.posterior import record_function, running_template  # noqa: E402
from slamjax.sampler import run_draws, run_warmup  # noqa: E402
from slamjax.state import init_state  # noqa: E402

SIZES = {
    "S": dict(n=500, p=100, k=5, factors=10),
    "M": dict(n=1000, p=1000, k=20, factors=40),
    "L": dict(n=2000, p=5000, k=30, factors=100),
    "A": dict(n=665, p=20842, k=50, factors=166),
}


def sweep_timers(model, chains: int, draws: int, covariance_every: int | None, settings: dict):
    """(bare, recorded): functions that run ``draws`` sweeps of ``chains`` chains, compiled, and
    return their seconds per sweep: without records (warm-up) and with the records of ``settings``
    (G and R over every ``covariance_every``-th draw; None: the plan's), the draws copied to the
    host as in a run."""
    data = model.data
    keys = jax.random.split(jax.random.key(0), chains)
    states = jax.vmap(init_state, in_axes=(0, None))(keys, data)
    accumulators = jax.tree.map(lambda x: jnp.zeros((chains,) + x.shape),
                                running_template(data, settings["record_loadings"]))
    every = settings["covariance_every"] if covariance_every is None else covariance_every
    record_fn = record_function(settings["record_covariances"], False, (), settings["record_loadings"], every)

    def bare(t):
        out, _ = run_warmup(data, states, keys, t, t + draws, accumulators=accumulators, num_draws=draws,
                            record_fn=record_fn)
        return out

    def recorded(t):
        out = run_draws(data, states, keys, accumulators, t, draws, 1, True, t, num_draws=draws, record_fn=record_fn)
        return jax.device_get(out[2])

    def timed(fn):
        def run(t):
            start = time.perf_counter()
            jax.block_until_ready(fn(t))
            return (time.perf_counter() - start) / draws
        run(0)  # compile
        return run

    return timed(bare), timed(recorded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["S", "M", "L"], choices=list(SIZES))
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=10, help="sweeps per timing")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--num-samples", type=int, default=1000, help="for the plan's byte counts")
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({jax.default_backend()}), float64, "
          f"{args.chains} chains")
    rows = []
    for size in args.sizes:
        spec = SIZES[size]
        ds = sj.datasets.simulate(n=spec["n"], p=spec["p"], k=spec["k"], seed=0)
        model = sj.Model(Y=ds.Y, K=ds.relmat["id"], n_factors=spec["factors"])
        with jax.enable_x64(True):
            plan, settings = plan_records(model.data, num_chains=args.chains, num_samples=args.num_samples,
                                          chunk_size=100, record_covariances=None, record_genetic_values=False,
                                          record_loadings=None, covariance_every=None)
        data = model.data
        sweep = sum(sweep_cost(data).values())
        print(f"\n{size}: n={spec['n']} p={spec['p']} factors={spec['factors']} ({model.backend}, "
              f"h2_draw={model.h2_draw}); model cost per chain: sweep {sweep:.3g} weighted multiply-adds, "
              f"G and R {covariance_record_cost(data):.3g}, U and Eta_mean {record_cost(data):.3g}")
        print(f"  {plan.describe()}", flush=True)
        bare, planned = sweep_timers(model, args.chains, args.draws, None, settings)
        _, every_draw = sweep_timers(model, args.chains, args.draws, 1, settings)
        times = {"bare": [], "planned": [], "every_draw": []}
        for repeat in range(args.repeats):  # interleaved; the minimum of each (a shared, noisy machine)
            for name, timer in (("bare", bare), ("planned", planned), ("every_draw", every_draw)):
                times[name].append(timer(args.draws * (repeat + 1)))
        row = dict(size=size, every=settings["covariance_every"], **{name: min(t) for name, t in times.items()})
        rows.append(row)
        bare, planned, every_draw = row["bare"], row["planned"], row["every_draw"]
        print(f"  s/sweep (min of {args.repeats}): no records {bare:.4f}; records as planned (G, R every "
              f"{settings['covariance_every']}) {planned:.4f} (+{100 * (planned / bare - 1):.1f} %); G and R every "
              f"draw {every_draw:.4f} (+{100 * (every_draw / bare - 1):.1f} %)", flush=True)
    print("\n| size | G, R every | s/sweep no records | planned records | G, R every draw |")
    print("|---|---|---|---|---|")
    for r in rows:
        planned, every_draw = 100 * (r["planned"] / r["bare"] - 1), 100 * (r["every_draw"] / r["bare"] - 1)
        print(f"| {r['size']} | {r['every']} | {r['bare']:.4f} | {r['planned']:.4f} (+{planned:.1f} %)"
              f" | {r['every_draw']:.4f} (+{every_draw:.1f} %) |")


if __name__ == "__main__":
    main()
