"""The state of one chain (an ``eqx.Module`` pytree), its initialisation and prior draws.

Trait-level arrays keep traits last. Responses, factor scores and random effects are held in the
coordinates of the random-effect backend (``re.rotate``: Q' for eigen and woodbury, the identity
for cholesky; original coordinates for Eta with missing-data groups); h2 values are
held as indices into the grid ``SamplerData.h2_grid``. F, U_F, B_F and Lambda are in the
parameter-expanded scale: the recorded draws divide tot_F_prec out.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from ._random import normal
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from ._sampler_data import SamplerData
from .priors._base import gamma_draw

__all__ = ["State", "init_state", "strongly_typed", "sample_prior_state", "sample_latent_traits", "B_precision"]


class State(eqx.Module):
    Eta: Float[Array, "n p"]  # latent traits (rotated; original coordinates with missing-data groups)
    B: Float[Array, "b p"]
    Lambda: Float[Array, "k p"]
    tot_Eta_prec: Float[Array, " p"]
    resid_h2_index: Int[Array, " p"]
    U_R: Float[Array, "r p"]  # rotated coordinates
    F: Float[Array, "n k"]  # rotated
    B_F: Float[Array, "bF k"]
    tot_F_prec: Float[Array, " k"]
    F_h2_index: Int[Array, " k"]
    U_F: Float[Array, "r k"]  # rotated coordinates
    Lambda_prior: PyTree
    B_prior: PyTree
    B_F_prior: PyTree
    obs: PyTree = ()  # the observation model's own parameters (``observation._base``)
    markers: "MarkerState | None" = None  # marker effects of the factors (``markers``), None without markers


class MarkerState(eqx.Module):
    """The factors' marker effects B_M (m x k, expanded scale like B_F), each effect's prior class
    (0 = the spike for BayesC / BayesR; 0 always for scale mixtures), the prior's own state, and
    their fitted part M B_M (rows in the sweep's coordinates), carried so that no sweep needs an
    n x m product outside the marker sampler."""

    B_M: Float[Array, "m k"]
    classes: Int[Array, "m k"]
    prior: PyTree
    fitted: Float[Array, "n k"]


def B_precision(data: SamplerData, B_prior_state: PyTree, p: int) -> Float[Array, "b p"]:
    """tau-free prior precision of B: the intercept's fixed precision over the ARD rows."""
    intercept = jnp.full((1, p), data.intercept_precision)
    return jnp.concatenate([intercept, data.B_prior.precision(B_prior_state)], axis=0)


def _middle_index(data: SamplerData, log_prior: Float[Array, " G"], size: int) -> Int[Array, " size"]:
    """The grid point whose shares sum closest to 1/2 among those the prior allows."""
    distance = jnp.abs(jnp.sum(data.h2_grid, axis=1) - 0.5)
    middle = jnp.argmin(jnp.where(jnp.isfinite(log_prior), distance, jnp.inf))
    return jnp.full((size,), middle, dtype=jnp.int32)


def strongly_typed(tree: PyTree) -> PyTree:
    """The same arrays without weak types, so that a state made here and one returned by a sweep
    have the same signature (a weakly typed leaf would compile the loops twice)."""
    return jax.tree.map(lambda x: jnp.asarray(x).astype(jnp.asarray(x).dtype), tree)


def _initial_latent_traits(data: SamplerData) -> Float[Array, "n p"]:
    if data.groups is not None:  # missing-data groups keep Eta in original coordinates
        return data.Y_start
    return data.re.rotate(data.Y_start)


def init_state(key: PRNGKeyArray, data: SamplerData) -> State:
    """A starting state: random factor scores, zero effects, h2 near 0.5, unit precisions."""
    s = data.shapes
    n, p, k, b, b_F, r = s["n"], s["p"], s["k"], s["b"], s["b_F"], s["r"]
    return strongly_typed(State(
        Eta=_initial_latent_traits(data),
        B=jnp.zeros((b, p)),
        Lambda=jnp.zeros((k, p)),
        tot_Eta_prec=jnp.ones((p,)),
        resid_h2_index=_middle_index(data, data.trait_log_prior, p),
        U_R=jnp.zeros((r, p)),
        F=normal(key, (n, k)),
        B_F=jnp.zeros((b_F, k)),
        tot_F_prec=jnp.ones((k,)),
        F_h2_index=_middle_index(data, data.factor_log_prior, k),
        U_F=jnp.zeros((r, k)),
        Lambda_prior=data.Lambda_prior.init(k, p),
        B_prior=data.B_prior.init(b - 1, p),
        B_F_prior=data.B_F_prior.init(b_F, k),
        obs=data.observation.init_parameters(),
        markers=None if data.markers is None else MarkerState(
            B_M=jnp.zeros((data.markers.m, k)),
            classes=jnp.full((data.markers.m, k), data.markers.prior.n_classes - 1, dtype=jnp.int32),
            prior=data.markers.prior.init(data.markers.m, k),
            fitted=jnp.zeros((n, k)),
        ),
    ))


def _coefficients(key, precision, tau):
    """Draws coef_ij ~ N(0, 1 / (tau_j precision_ij))."""
    return normal(key, precision.shape) / jnp.sqrt(precision * tau[None, :])


def sample_latent_traits(key: PRNGKeyArray, state: State, data: SamplerData) -> Float[Array, "n p"]:
    """Eta ~ p(Eta | everything else): X B + F Lambda + Z U_R + E_R, in rotated coordinates
    (original coordinates with missing-data groups)."""
    mean = data.X @ state.B + state.F @ state.Lambda + data.re.effect_on_rows(state.U_R)
    if data.groups is not None:
        mean = data.re.unrotate(mean)
    sd = jnp.sqrt(data.re.residual_proportion(state.resid_h2_index) / state.tot_Eta_prec)
    return mean + sd[None, :] * normal(key, mean.shape)


def sample_prior_state(key: PRNGKeyArray, data: SamplerData) -> State:
    """A draw of every parameter from the prior, and latent traits from the model (for Geweke's test).

    Needs proper priors: ``intercept_precision > 0``.
    """
    s = data.shapes
    n, p, k, b, b_F, r = s["n"], s["p"], s["k"], s["b"], s["b_F"], s["r"]
    keys = iter(jax.random.split(key, 16))
    tau = gamma_draw(next(keys), jnp.full((p,), data.tau_shape), data.tau_rate)
    tau_F = gamma_draw(next(keys), jnp.full((k,), data.F_tau_shape), data.F_tau_rate)
    h2_index = jax.random.categorical(next(keys), data.trait_log_prior, shape=(p,))
    F_h2_index = jax.random.categorical(next(keys), data.factor_log_prior, shape=(k,))
    Lambda_prior = data.Lambda_prior.sample_prior(next(keys), k, p)
    B_prior = data.B_prior.sample_prior(next(keys), b - 1, p)
    B_F_prior = data.B_F_prior.sample_prior(next(keys), b_F, k)
    B = _coefficients(next(keys), B_precision(data, B_prior, p), tau)
    Lambda = _coefficients(next(keys), data.Lambda_prior.precision(Lambda_prior), tau)
    B_F = _coefficients(next(keys), data.B_F_prior.precision(B_F_prior), tau_F)
    U_R = normal(next(keys), (r, p)) * data.re.effect_prior_sd(h2_index, tau)
    U_F = normal(next(keys), (r, k)) * data.re.effect_prior_sd(F_h2_index, tau_F)
    F_mean = data.X_F @ B_F + data.re.effect_on_rows(U_F)
    markers = None
    if data.markers is not None:
        prior, m = data.markers.prior, data.markers.m
        prior_state = prior.sample_prior(jax.random.fold_in(key, 0x3A7), m, k)
        B_M, classes = prior.sample_effects(jax.random.fold_in(key, 0x3A8), prior_state, m, k, tau_F)
        fitted = data.markers.product(B_M)
        markers = MarkerState(B_M=B_M, classes=classes.astype(jnp.int32), prior=prior_state, fitted=fitted)
        F_mean = F_mean + fitted
    F = F_mean + normal(next(keys), (n, k)) * jnp.sqrt(data.re.residual_proportion(F_h2_index) / tau_F)[None, :]
    state = State(
        Eta=jnp.zeros((n, p)),
        B=B,
        Lambda=Lambda,
        tot_Eta_prec=tau,
        resid_h2_index=h2_index.astype(jnp.int32),
        U_R=U_R,
        F=F,
        B_F=B_F,
        tot_F_prec=tau_F,
        F_h2_index=F_h2_index.astype(jnp.int32),
        U_F=U_F,
        Lambda_prior=Lambda_prior,
        B_prior=B_prior,
        B_F_prior=B_F_prior,
        obs=data.observation.sample_prior_parameters(jax.random.fold_in(key, 0x0B5)),
        markers=markers,
    )
    return strongly_typed(eqx.tree_at(lambda st: st.Eta, state, sample_latent_traits(next(keys), state, data)))


def permute_factors(state: State, order: Int[Array, " k"]) -> State:
    """The state with the factor at position ``order[r]`` moved to position r, taking everything of
    its own: loadings and their prior's rows, scores, U_F, B_F and its prior's columns, tot_F_prec,
    h2_F, and an ordered prior's column shrinkage prod delta (the deltas recomputed from the
    permuted products). The marker effects are not moved."""
    k = state.Lambda.shape[0]
    # the ordered priors' factor-indexed leaves are (k, p) or (k,); B_F's prior's are (b_F, k) or (b_F,)
    Lambda_prior = jax.tree.map(lambda x: x[order] if x.ndim >= 1 and x.shape[0] == k else x, state.Lambda_prior)
    if hasattr(state.Lambda_prior, "delta"):
        column_shrinkage = jnp.cumprod(state.Lambda_prior.delta)[order]
        delta = column_shrinkage / jnp.concatenate([jnp.ones(1, column_shrinkage.dtype), column_shrinkage[:-1]])
        Lambda_prior = eqx.tree_at(lambda s: s.delta, Lambda_prior, delta)
    B_F_prior = jax.tree.map(lambda x: x[:, order] if x.ndim == 2 else x, state.B_F_prior)
    return eqx.tree_at(
        lambda s: (s.Lambda, s.F, s.U_F, s.B_F, s.tot_F_prec, s.F_h2_index, s.Lambda_prior, s.B_F_prior),
        state,
        (state.Lambda[order], state.F[:, order], state.U_F[:, order], state.B_F[:, order], state.tot_F_prec[order],
         state.F_h2_index[order], Lambda_prior, B_F_prior),
    )

