"""Warm-up aids: factor re-ordering keeps the model, orders factors, resets collinear ones."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from slamjax.posterior import record_function, running_template
from slamjax.warmup import factor_sizes, reorder_factors

from _models import prior_state, tiny_model


def _state():
    model = tiny_model(n=30, p=6, k=4)
    return model, prior_state(model, seed=3)


def test_reorder_keeps_every_implied_quantity():
    model, state = _state()
    new = reorder_factors(jax.random.key(0), state, drop_correlation=1.01)  # nothing is dropped
    sizes = np.asarray(factor_sizes(new))
    assert np.all(np.diff(sizes) <= 0)
    np.testing.assert_allclose(np.sort(sizes)[::-1], np.sort(np.asarray(factor_sizes(state)))[::-1], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(new.F @ new.Lambda), np.asarray(state.F @ state.Lambda), atol=1e-12)
    np.testing.assert_allclose(np.asarray(new.U_F @ new.Lambda), np.asarray(state.U_F @ state.Lambda), atol=1e-12)
    record = record_function(True, False)  # G and R per draw
    before, after = (record(s, model.data, running_template(model.data), 0)[0] for s in (state, new))
    for name in ("G", "R", "h2", "B"):
        np.testing.assert_allclose(np.asarray(after[name]), np.asarray(before[name]), rtol=1e-10, atol=1e-12)
    order = np.argsort(-np.asarray(factor_sizes(state)))
    tau_before = np.cumprod(np.asarray(state.Lambda_prior.delta))
    np.testing.assert_allclose(np.cumprod(np.asarray(new.Lambda_prior.delta)), tau_before[order], rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(new.Lambda_prior.phi), np.asarray(state.Lambda_prior.phi)[order])
    np.testing.assert_array_equal(np.asarray(new.F_h2_index), np.asarray(state.F_h2_index)[order])


def test_collinear_factor_is_reset():
    model, state = _state()
    sizes = np.asarray(factor_sizes(state))
    big, small = int(np.argmax(sizes)), int(np.argmin(sizes))
    F = state.F.at[:, small].set(0.5 * state.F[:, big] + 1e-3 * jnp.arange(30.0) / 30)
    state = eqx.tree_at(lambda s: s.F, state, F)
    new = reorder_factors(jax.random.key(0), state, drop_correlation=0.6)
    assert float(jnp.sum(new.Lambda[-1] ** 2)) == 0.0  # the reset factor goes last, with zero loadings
    kept = np.asarray(new.F[:, :-1])
    np.testing.assert_allclose(np.sort(np.abs(kept).sum(0)), np.sort(np.abs(np.delete(np.asarray(F), small, 1)).sum(0)))
