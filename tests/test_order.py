"""Step 0o (``slamjax.blocks.order``): neighbouring factors swap places with their column shrinkage.

The move changes the joint density only through the deltas' Gamma priors (module docstring), so
applied to deltas drawn from that prior it must return deltas from that prior: independent
Gamma(a_r, b_r) at every position r. ``order_z`` checks the first two moments of delta_r and
log delta_r at every position against their closed forms over independent replicates (each one a
prior draw and the move's passes). ``swap_state_z`` applies the sweep's step (``sampler._swap``)
to prior draws of a tiny model's whole state: every factor must take its own loadings, scores, U_F,
B_F, their priors' parameters, tot_F_prec and h2_F along with its column shrinkage. The whole sweep
with the move is in every Geweke variant but MegaLMM's sweep (``tests/test_geweke.py``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

import slamjax as sj
from _models import tiny_model
from _stats import Z_BOUND
from slamjax.blocks.order import ORDER_PASSES, sample_factor_order, swap_deltas

K = 4
SHAPE = np.array([2.0, 3.0, 3.0, 3.0])  # the MGPS defaults: delta_1 ~ Gamma(2, 1), delta_h ~ Gamma(3, 1)
RATE = np.ones(K)
N_REPLICATES = 200_000


def test_swap_exchanges_two_column_shrinkages_and_is_an_involution():
    delta = jnp.asarray(np.random.default_rng(0).gamma(3.0, 1.0, size=5))
    t = np.cumprod(np.asarray(delta))
    for l in range(4):
        swapped = swap_deltas(delta, jnp.asarray(l))
        expected = t.copy()
        expected[[l, l + 1]] = t[[l + 1, l]]
        np.testing.assert_allclose(np.cumprod(np.asarray(swapped)), expected, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(swap_deltas(swapped, jnp.asarray(l))), np.asarray(delta), rtol=1e-12)


def order_z(seed: int = 0, n: int = N_REPLICATES) -> tuple[np.ndarray, float]:
    """(z-scores of E delta_r, E delta_r^2, E log delta_r, E (log delta_r)^2 at every position
    against the Gamma priors, the fraction of replicates whose order changed)."""
    key_prior, key_move = jax.random.split(jax.random.key(seed))
    shape, rate = jnp.asarray(SHAPE), jnp.asarray(RATE)
    delta = jax.random.gamma(key_prior, shape, (n, K), dtype=jnp.float64) / rate
    orders, moved = jax.jit(jax.vmap(lambda key, d: sample_factor_order(key, d, shape, rate)))(
        jax.random.split(key_move, n), delta)
    moved, orders = np.asarray(moved), np.asarray(orders)
    a, b = SHAPE, RATE
    log_mean = special.digamma(a) - np.log(b)
    log_var = special.polygamma(1, a)
    closed = {  # (sample, exact mean, exact variance) per position
        "delta": (moved, a / b, a / b**2),
        "delta^2": (moved**2, a * (a + 1) / b**2, a * (a + 1) * (4 * a + 6) / b**4),
        "log delta": (np.log(moved), log_mean, log_var),
        "(log delta)^2": (np.log(moved) ** 2, log_var + log_mean**2, None),
    }
    z = []
    for name, (sample, mean, variance) in closed.items():
        sd = np.sqrt(variance) if variance is not None else sample.std(axis=0)
        z.append((sample.mean(axis=0) - mean) / (sd / np.sqrt(n)))
    changed = float(np.mean(np.any(orders != np.arange(K), axis=1)))
    return np.concatenate(z), changed


def test_order_move_keeps_the_deltas_prior():
    z, changed = order_z()
    assert changed > 0.2, f"the move hardly moves: {changed:.2f} of the replicates changed order"
    assert np.all(np.abs(z) < Z_BOUND), f"max |z| = {np.max(np.abs(z)):.2f}: {np.round(z, 2)}"


def test_passes_alternate_and_keep_a_permutation():
    delta = jnp.asarray([1.0, 0.5, 4.0, 0.2, 3.0])
    shape, rate = jnp.full(5, 3.0), jnp.ones(5)
    order, moved = sample_factor_order(jax.random.key(3), delta, shape, rate, passes=ORDER_PASSES)
    assert sorted(np.asarray(order).tolist()) == list(range(5))
    # each position holds its factor's column shrinkage
    np.testing.assert_allclose(np.cumprod(np.asarray(moved)), np.cumprod(np.asarray(delta))[np.asarray(order)],
                               rtol=1e-12)


def test_model_defaults_and_bad_inputs():
    assert tiny_model(k=3).data.swap_factors
    assert not tiny_model(k=3, swap_factors=False).data.swap_factors
    ard = sj.Priors(Lambda=sj.priors.ARD())
    assert not tiny_model(k=3, priors=ard).data.swap_factors  # "auto": no ordered prior, no move
    with pytest.raises(sj.SlamjaxInputError, match="swap_factors=True needs an ordered loadings prior"):
        tiny_model(k=3, priors=ard, swap_factors=True)
    with pytest.raises(sj.SlamjaxInputError, match="swap_factors: must be 'auto', True or False"):
        tiny_model(k=3, swap_factors="yes")


def swap_state_z(seed: int = 0, n: int = 100_000) -> np.ndarray:
    """z-scores of the sweep's step 0o (``sampler._swap``) applied to ``n`` independent prior draws
    of a tiny model's whole state (k = 3): at every position the loadings, B_F, U_F and the scores
    must still have their priors given the parameters now at that position (chi-square quadratic
    forms against their degrees of freedom; terms of variance 0 at the drawn h2 left out), and
    log delta its Gamma moments."""
    from slamjax.sampler import _swap
    from slamjax.state import sample_prior_state

    model = tiny_model(k=3)
    data = model.data
    keys = jax.random.split(jax.random.key(seed), 2 * n)

    def form(x, sd):
        """(sum of (x / sd)^2 - its degrees of freedom, the degrees of freedom) per column."""
        positive = sd > 0
        q = jnp.sum(jnp.where(positive, (x / jnp.where(positive, sd, 1.0)) ** 2, 0.0), axis=0)
        df = jnp.sum(positive, axis=0).astype(x.dtype)
        return q - df, df

    def statistics(key_prior, key_swap):
        state = _swap(key_swap, sample_prior_state(key_prior, data), data)
        re = data.re
        tau_F = state.tot_F_prec
        forms = [
            form(state.Lambda.T, 1.0 / jnp.sqrt(data.Lambda_prior.precision(state.Lambda_prior).T
                                                * state.tot_Eta_prec[:, None])),
            form(state.B_F, 1.0 / jnp.sqrt(data.B_F_prior.precision(state.B_F_prior) * tau_F[None, :])),
            form(state.U_F, re.effect_prior_sd(state.F_h2_index, tau_F) * jnp.ones_like(state.U_F)),
            form(state.F - data.X_F @ state.B_F - re.effect_on_rows(state.U_F),
                 jnp.sqrt(re.residual_proportion(state.F_h2_index) / tau_F)[None, :] * jnp.ones_like(state.F)),
        ]
        return forms, jnp.log(state.Lambda_prior.delta)

    forms, log_delta = jax.jit(jax.vmap(statistics))(keys[:n], keys[n:])
    z = [np.asarray(excess).mean(axis=0) / np.sqrt(2 * np.asarray(df).mean(axis=0) / n) for excess, df in forms]
    shape = np.asarray(data.Lambda_prior._delta_hyper(3)[0])
    z.append((np.asarray(log_delta).mean(axis=0) - special.digamma(shape))
             / np.sqrt(special.polygamma(1, shape) / n))
    return np.concatenate(z)


def test_swap_step_keeps_the_state_prior():
    z = swap_state_z()
    assert np.all(np.abs(z) < Z_BOUND), f"max |z| = {np.max(np.abs(z)):.2f}: {np.round(z, 2)}"
