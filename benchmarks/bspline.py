"""The cost of the B-spline link (``sj.obs.BSplineRegression``) in a sweep, on the grav2 data
(162 Arabidopsis RILs x 241 time points of root tip angle, relationship from the markers).

Prints, after compilation, the seconds per sweep of the whole model (``run_warmup``: sweeps in a
compiled loop, one chain), the seconds of the link's step 9 alone (``sample_latent`` then
``sample_parameters``, in a compiled loop on the same inputs), their ratio (the share of the
sweep the link costs; target at most 25 %), and, as a cross-check, the sweep of the same model
with the link's starting coefficients as Gaussian data (step 9 skipped).

Two designs: grav2 as it is (balanced: every line at the same 241 times, so one Cholesky factor
serves every line), and "thinned", each observation kept with probability 0.8 (every line at
its own times: one p x p Cholesky per line and sweep, the general case).

    python benchmarks/bspline.py [--n-basis 10] [--factors 5] [--iterations 200]
"""

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from jax import lax  # noqa: E402

import slamjax as sj  # noqa: E402
from speed import seconds_per_iteration  # noqa: E402


def grav2_tall(keep: float = 1.0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(tall observations: line, hours, angle; one row per line; the markers' relationship matrix)."""
    ds = sj.datasets.load_grav2()
    wide = ds.Y.copy()
    wide.columns = ds.Y.attrs["time_hours"]
    tall = wide.rename_axis(index="line", columns="hours").stack().rename("angle").reset_index()
    if keep < 1.0:
        tall = tall[np.random.default_rng(0).random(len(tall)) < keep].reset_index(drop=True)
    K = sj.grm(ds.markers, coding="01")
    data = pd.DataFrame({"line": ds.Y.index}, index=ds.Y.index)
    return tall, data, K


def seconds_per_sweep(model: sj.Model, iterations: int) -> tuple[float, object]:
    """(seconds per sweep of one chain, the best of 5 timings: the machine is shared; the chain
    state after 20 sweeps)."""
    return seconds_per_iteration(model, 1, iterations, repeats=5, statistic=np.min, warmup=20, return_states=True)


@jax.jit
def _link_steps(link, parameters, mean, resid_variance, key, iterations):
    """``iterations`` draws of step 9 (Eta, then the link's parameters) in a compiled loop."""

    def body(t, carry):
        parameters, total = carry
        step = jax.random.fold_in(key, t)
        latent = link.sample_latent(step, parameters, mean, resid_variance)
        parameters = link.sample_parameters(jax.random.fold_in(step, 1), parameters, latent)
        return parameters, total + latent[0, 0]

    return lax.fori_loop(0, iterations, body, (parameters, jnp.zeros(())))


def seconds_per_link_step(model: sj.Model, state, iterations: int) -> float:
    """Step 9 alone, on the state's mean and residual variances (data units), as the sweep calls it
    (the best of 5 timings)."""
    data = model.data
    state = jax.tree.map(lambda x: x[0], state)
    re = data.re
    mean = data.Y_mean + data.Y_scale * re.unrotate(data.X @ state.B + state.F @ state.Lambda
                                                    + re.effect_on_rows(state.U_R))
    resid_variance = data.Y_scale**2 * re.residual_proportion(state.resid_h2_index) / state.tot_Eta_prec
    link, key = data.observation, jax.random.key(1)
    jax.block_until_ready(_link_steps(link, state.obs, mean, resid_variance, key, 2))  # compile
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        jax.block_until_ready(_link_steps(link, state.obs, mean, resid_variance, key, iterations))
        timings.append((time.perf_counter() - start) / iterations)
    return float(np.min(timings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-basis", type=int, nargs="+", default=[10])
    parser.add_argument("--factors", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=500)
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({jax.default_backend()}), float64")
    print(f"grav2: 162 lines x 241 times; k = {args.factors} factors")
    print(f"{'design':>8} {'obs':>6} {'p':>4} {'sweep s/it':>11} {'link s/it':>10} {'link share':>10} "
          f"{'gaussian s/it':>13} {'difference':>10}")
    with jax.enable_x64(True):
        for design, n_basis in [(design, n_basis) for design in ("balanced", "thinned") for n_basis in args.n_basis]:
            tall, data, K = grav2_tall(1.0 if design == "balanced" else 0.8)
            link = sj.obs.BSplineRegression(tall, time="hours", value="angle", individual="line", n_basis=n_basis)
            common = dict(data=data, formula="~ 1 + (1|line)", relmat={"line": K}, n_factors=args.factors)
            model = sj.Model(observation=link, **common)
            sweep, states = seconds_per_sweep(model, args.iterations)
            step = seconds_per_link_step(model, states, args.iterations)
            start = pd.DataFrame(link.latent_start(), index=pd.Index(link.individual_names),
                                 columns=list(link.latent_names))
            gaussian, _ = seconds_per_sweep(sj.Model(Y=start, **common), args.iterations)
            print(f"{design:>8} {len(tall):>6} {n_basis:>4} {sweep:>11.6f} {step:>10.6f} {step / sweep:>10.1%} "
                  f"{gaussian:>13.6f} {sweep - gaussian:>10.6f}", flush=True)


if __name__ == "__main__":
    main()
