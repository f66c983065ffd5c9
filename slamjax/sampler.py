"""One Gibbs sweep, and the compiled loops that run it over iterations and chains.

A block knows nothing of chains: ``sweep`` takes and returns one chain's State. This module adds
``vmap`` over chains and loops over iterations. Iteration t of a chain uses the key
``fold_in(chain_key, t)``, so draws do not depend on how a run is cut into chunks.

The NaN guard: ``sweep`` returns one failure bit per block (``BLOCK_NAMES``), set when that
block's draw is not finite (or its factorisation failed). The loops keep, per chain, the first
failing sweep and its bits (a failure record, two int32: a few integer operations per sweep, no
host round trip); ``run.py`` raises ``NumericalError`` naming the block, the sweep and the chain.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Int, PRNGKeyArray, PyTree

from ._lowering import unrolled_threefry
from ._sampler_data import SamplerData
from .blocks.factors import sample_factor_scores
from .blocks.marginal_factors import sample_factors_marginal, sample_intercept_shift
from .blocks.columns import sample_columns
from .blocks.exchange import OrderedShrinkage, sample_loadings_rescale, sample_variance_exchange
from .blocks.order import sample_factor_order
from .blocks.rotation import sample_factor_rotation
from .blocks.trait_groups import sample_factor_scores_by_row, sample_trait_groups
from .markers.sampler import sample_joint, sample_single_site
from .observation.gaussian import impute_missing
from .state import B_precision, MarkerState, State, permute_factors

__all__ = ["BLOCK_NAMES", "NO_FAILURE", "block_order", "run_draws", "run_warmup", "sweep"]

# bit i of the failure bits returned by a sweep: block i produced non-finite values
BLOCK_NAMES = (
    "factor rotation (step 0)",
    "trait h2 (step 2)",
    "trait regressions [B; Lambda] and tau (step 1)",
    "trait random effects U_R (step 3)",
    "factor h2 F_h2 and the factor means (steps 5l, 5m and 5)",
    "factor regressions B_F and tau_F (step 4)",
    "factor random effects U_F (step 6)",
    "factor scores F (step 7)",
    "Lambda shrinkage prior (step 8)",
    "B shrinkage prior (step 8)",
    "B_F shrinkage prior (step 8)",
    "observation model: latent traits Eta and its parameters (step 9)",
    "marker effects B_M and their prior (step 6b)",
    "factor-trait variance exchange and loadings rescaling (step 0e)",
)
_MARKER_BIT = 12
_EXCHANGE_BIT = 13
# (first failing sweep, its failure bits) of one chain; sweep -1: no failure yet
NO_FAILURE = (-1, 0)


def block_order(collapsed_h2: bool) -> tuple[int, ...]:
    """The bits of ``BLOCK_NAMES`` in the order a sweep runs their blocks: the collapsed h2 draw
    comes before its column's regression, the conditional one after it."""
    steps = (0, 1, 2, 3, 4, 5) if collapsed_h2 else (0, 2, 1, 3, 5, 4)
    return (_EXCHANGE_BIT, *steps, 6, _MARKER_BIT, *range(7, _MARKER_BIT))


def _finite(*trees) -> Bool[Array, ""]:
    """True when every array in ``trees`` is finite."""
    leaves = jax.tree.leaves(trees)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.array(True)


def _failure_bits(*oks) -> Int[Array, ""]:
    """Bit i set where ``oks[i]`` is False (in ``BLOCK_NAMES`` order)."""
    return sum((~ok).astype(jnp.int32) << i for i, ok in enumerate(oks))


def sweep(key: PRNGKeyArray, state: State, data: SamplerData) -> tuple[State, Int[Array, ""]]:
    """One partially collapsed Gibbs sweep (DESIGN.md section 2). Returns (state, failure bits):
    bit i is set when block ``BLOCK_NAMES[i]`` produced non-finite values or its factorisation failed."""
    keys = jax.random.split(key, 8)
    re = data.re
    b = data.X.shape[1]
    n, p = state.Eta.shape

    # 0o: neighbouring factors swap places with their column shrinkage (blocks/order.py).
    if data.swap_factors:
        state = _swap(jax.random.fold_in(key, 0x0D), state, data)

    # 0e: each factor's loadings trade variance with the traits' own and with their prior's
    # scale, marginal over its scores, U_R and U_F (blocks/exchange.py); steps 3 and 6 redraw U_R
    # and U_F before anything uses them.
    exchange_ok = jnp.array(True)
    if data.exchange_factors or data.rescale_factors:
        state, exchange_ok = _exchange(jax.random.fold_in(key, 0xE0), state, data)

    Lambda_precision = data.Lambda_prior.precision(state.Lambda_prior)
    B_F_precision = data.B_F_prior.precision(state.B_F_prior)

    # 0: the factors' rotation and shears, marginal over U_F (redrawn in steps 4-6 before it is used).
    F = state.F
    rotation_ok = jnp.array(True)
    markers = data.markers
    marker_state = state.markers
    if data.rotate_factors:  # the rotated B_F and Lambda are redrawn in steps 1-6 before any use
        B_F_now, B_F_weights, offset = state.B_F, B_F_precision, None
        if markers is not None:  # the marker effects rotate with B_F (scale-mixture priors only)
            B_F_now = jnp.concatenate([B_F_now, marker_state.B_M], axis=0)
            B_F_weights = jnp.concatenate([B_F_weights, markers.prior.precision(marker_state.prior)], axis=0)
            offset = marker_state.fitted
        F, B_F_rotated, Lambda_rotated, T = sample_factor_rotation(
            keys[7], re, F, data.X_F, B_F_now, state.Lambda, state.F_h2_index, state.tot_F_prec,
            B_F_weights, Lambda_precision, state.tot_Eta_prec, offset=offset, shear=data.shear_factors,
        )
        rotation_ok = _finite(F, B_F_rotated, Lambda_rotated)
        if markers is not None:
            marker_state = eqx.tree_at(lambda st: (st.B_M, st.fitted), marker_state,
                                       (B_F_rotated[data.X_F.shape[1]:], marker_state.fitted @ T))

    # 1-3: traits. h2, (B, Lambda, tau) and U_R (blocks/columns.py).
    groups = data.groups
    prior_precision = jnp.concatenate([B_precision(data, state.B_prior, p), Lambda_precision], axis=0)
    if groups is None:
        W = jnp.concatenate([data.X, F], axis=1)
        coef, tau, h2_index, U_R, trait_ok = sample_columns(
            keys[0], re, state.Eta, W, state.resid_h2_index, prior_precision, data.tau_shape, data.tau_rate,
            n, data.n_flat, data.trait_log_prior, data.collapsed_h2,
        )
    else:  # each missing-data group on its own rows, in original coordinates
        F_original = re.unrotate(F)
        coef, tau, h2_index, U_R, trait_ok = sample_trait_groups(
            keys[0], state.Eta, F_original, state.resid_h2_index, prior_precision, groups,
            data.tau_shape, data.tau_rate, data.n_flat, data.trait_log_prior, data.collapsed_h2,
        )
    B, Lambda = coef[:b], coef[b:]
    resid_variance = re.residual_proportion(h2_index) / tau

    # 5l: the factors' means and the traits' intercepts moved together; 5m: (h2_Fl, F_l) for each
    # factor in turn, h2_Fl marginal over F_l and U_R; both marginal over U_F (blocks/marginal_factors.py).
    # U_R is redrawn after 5m, and steps 4-6 redraw U_F, given the new F before anything uses them.
    h2_ok = jnp.array(True)
    if data.marginal_factor_h2:
        B_F_now = B_F_rotated[: data.X_F.shape[1]] if data.rotate_factors else state.B_F
        F_fixed_now = data.X_F @ B_F_now + (marker_state.fitted if markers is not None else 0.0)
        variances = re.variances()
        F, B0, shift_ok = sample_intercept_shift(
            jax.random.fold_in(keys[2], 0x51), data.X[:, 0], variances, F, F_fixed_now, state.tot_F_prec,
            state.F_h2_index, Lambda, B[0], data.intercept_precision * tau,
        )
        B = B.at[0].set(B0)
        F, F_h2_marginal, h2_ok = sample_factors_marginal(
            jax.random.fold_in(keys[2], 0x5E), variances, state.Eta - data.X @ B, Lambda, tau, h2_index, F,
            F_fixed_now, state.tot_F_prec, state.F_h2_index, data.factor_log_prior,
        )
        state = eqx.tree_at(lambda st: st.F_h2_index, state, F_h2_marginal)
        # 5m integrated U_R out: redraw it given the new F before step 7 uses it
        U_R = re.sample_effects(jax.random.fold_in(keys[2], 0x3E), state.Eta - data.X @ B - F @ Lambda, h2_index, tau)
        h2_ok = h2_ok & shift_ok & _finite(U_R)

    # 4-6: factors, the same three blocks on (F - M B_M, X_F); the marker effects' prior, scaled
    # by tau_F, adds its terms to tau_F's Gamma.
    F_markers, F_tau_shape, F_tau_rate = 0.0, data.F_tau_shape, data.F_tau_rate
    if markers is not None:
        F_markers = marker_state.fitted
        shape_add, rate_add = markers.prior.tau_terms(marker_state.prior, marker_state.B_M, marker_state.classes)
        F_tau_shape, F_tau_rate = F_tau_shape + shape_add, F_tau_rate + rate_add
    B_F, tau_F, F_h2_index, U_F, factor_ok = sample_columns(
        keys[1], re, F - F_markers, data.X_F, state.F_h2_index, B_F_precision,
        F_tau_shape, F_tau_rate, n, 0, data.factor_log_prior, data.collapsed_h2,
    )
    F_fixed = data.X_F @ B_F

    # 6b: marker effects given U_F (markers.sampler), then their prior's parameters.
    marker_ok = jnp.array(True)
    if markers is not None:
        marker_state, F_markers, marker_ok = _sample_markers(
            jax.random.fold_in(keys[1], 0x3A), markers, marker_state, F - F_fixed - re.effect_on_rows(U_F),
            F_markers, tau_F / re.residual_proportion(F_h2_index), tau_F,
        )
        F_fixed = F_fixed + F_markers

    # 7: factor scores.
    F_prior_mean = F_fixed + re.effect_on_rows(U_F)
    F_prior_precision = tau_F / re.residual_proportion(F_h2_index)
    if groups is None:
        trait_effects = data.X @ B + re.effect_on_rows(U_R)
        F, scores_ok = sample_factor_scores(
            keys[2], state.Eta - trait_effects, Lambda, 1.0 / resid_variance, F_prior_mean, F_prior_precision
        )
    else:  # rows differ in which traits they observe: original coordinates, one Cholesky per row
        trait_effects = groups.X @ B + re.unrotate(re.effect_on_rows(U_R))
        F_original, scores_ok = sample_factor_scores_by_row(
            keys[2], state.Eta - trait_effects, Lambda, 1.0 / resid_variance, re.unrotate(F_prior_mean),
            F_prior_precision, groups,
        )
        F = re.rotate(F_original)

    # 8: shrinkage.
    Lambda_prior = data.Lambda_prior.sample(keys[3], state.Lambda_prior, Lambda, tau)
    B_prior = data.B_prior.sample(keys[4], state.B_prior, B[1:], tau)
    B_F_prior = data.B_F_prior.sample(keys[5], state.B_F_prior, B_F, tau_F)

    # 9: observation model: Eta (and the model's own parameters) given the data.
    Eta, obs_parameters = state.Eta, state.obs
    observation_ok = jnp.array(True)
    if groups is not None:
        if groups.has_imputed:  # only the cells merging left inside a group; Eta stays unrotated
            Eta = impute_missing(keys[6], trait_effects + F_original @ Lambda, resid_variance, Eta, ~groups.imputed)
            observation_ok = _finite(Eta)
    elif not data.latent_is_data:  # in the data's units and original coordinates, then back
        obs = data.observation
        mean = data.Y_mean + data.Y_scale * re.unrotate(trait_effects + F @ Lambda)
        latent, obs_parameters = obs.sample_latent_and_parameters(
            keys[6], obs_parameters, mean, data.Y_scale**2 * resid_variance)
        Eta = re.rotate((latent - data.Y_mean) / data.Y_scale)
        observation_ok = _finite(Eta, obs_parameters)

    new_state = State(
        Eta=Eta, B=B, Lambda=Lambda, tot_Eta_prec=tau, resid_h2_index=h2_index, U_R=U_R,
        F=F, B_F=B_F, tot_F_prec=tau_F, F_h2_index=F_h2_index, U_F=U_F,
        Lambda_prior=Lambda_prior, B_prior=B_prior, B_F_prior=B_F_prior, obs=obs_parameters, markers=marker_state,
    )
    # a prior's state is checked with the precision it gives (a finite state can overflow it)
    priors_ok = [
        _finite(prior_state, prior.precision(prior_state))
        for prior, prior_state in ((data.Lambda_prior, Lambda_prior), (data.B_prior, B_prior), (data.B_F_prior, B_F_prior))
    ]
    failures = _failure_bits(
        rotation_ok, trait_ok[0], trait_ok[1], trait_ok[2], factor_ok[0] & h2_ok, factor_ok[1], factor_ok[2],
        scores_ok & _finite(F), *priors_ok, observation_ok, marker_ok, exchange_ok,
    )
    return new_state, failures


def _swap(key, state: State, data: SamplerData) -> State:
    """Step 0o (``blocks/order.py``): the factors' order, each factor taking everything of its own
    and its column shrinkage prod delta to its new position (``state.permute_factors``)."""
    shape, rate = data.Lambda_prior._delta_hyper(state.Lambda.shape[0])
    dtype = state.Lambda.dtype
    order, _ = sample_factor_order(key, state.Lambda_prior.delta, shape.astype(dtype), rate.astype(dtype))
    return permute_factors(state, order)


def _exchange(key, state: State, data: SamplerData) -> tuple[State, Bool[Array, ""]]:
    """Step 0e (``blocks/exchange.py``). It integrates U_R and U_F out; nothing conditions on them
    before steps 3 and 6 redraw them (steps 0, 1-2, 5l, 5m and 4 are marginal over them too). The
    rescaling move alone (the default) runs from sufficient statistics, O(n) per proposal."""
    p = state.Eta.shape[1]
    variances, resid = data.re.variances(), state.Eta - data.X @ state.B
    prior_mean = data.X_F @ state.B_F + (state.markers.fitted if data.markers is not None else 0.0)
    shrinkage = None
    if data.rescale_factors:  # the second move: each row's loadings against their shrinkage scale
        delta_shape, delta_rate = data.Lambda_prior._delta_hyper(state.Lambda.shape[0])
        dtype = state.Lambda.dtype
        shrinkage = OrderedShrinkage(state.Lambda_prior.delta, delta_shape.astype(dtype), delta_rate.astype(dtype))
    if data.exchange_factors:
        Lambda_precision = data.Lambda_prior.precision(state.Lambda_prior)
        prior_precision = jnp.concatenate([B_precision(data, state.B_prior, p), Lambda_precision], axis=0)
        quadratic = jnp.sum(prior_precision * jnp.concatenate([state.B, state.Lambda], axis=0) ** 2, axis=0)
        Lambda, tau, F, shrinkage, ok = sample_variance_exchange(
            key, variances, resid, state.Lambda, state.tot_Eta_prec, state.resid_h2_index, state.F, prior_mean,
            state.tot_F_prec, state.F_h2_index, quadratic, Lambda_precision, data.tau_shape, data.tau_rate,
            prior_precision.shape[0] - data.n_flat, shrinkage=shrinkage,
        )
    else:
        tau = state.tot_Eta_prec
        Lambda, F, shrinkage, ok = sample_loadings_rescale(
            key, variances, resid, state.Lambda, tau, state.resid_h2_index, state.F, prior_mean, state.tot_F_prec,
            state.F_h2_index, shrinkage)
    state = eqx.tree_at(lambda st: (st.Lambda, st.tot_Eta_prec, st.F), state, (Lambda, tau, F))
    if data.rescale_factors:
        state = eqx.tree_at(lambda st: st.Lambda_prior.delta, state, shrinkage.delta)
    return state, ok


def _sample_markers(key, markers, marker_state: MarkerState, residual_without_markers, F_markers, w, tau_F):
    """Step 6b: B_M given the factors' residual without the markers (rows independent, precision
    w per factor), then the prior's parameters given B_M. Returns (marker state, M B_M, ok)."""
    key_effects, key_prior = jax.random.split(key)
    prior = markers.prior
    if markers.sampler == "joint":
        B_M, chol_ok = sample_joint(key_effects, markers.M, residual_without_markers, w, tau_F,
                                    prior.precision(marker_state.prior))
        classes = marker_state.classes
        F_markers = markers.product(B_M)
    else:
        precision, log_pi = prior.site_table(marker_state.prior)
        B_M, classes, residual = sample_single_site(
            key_effects, markers.blocks, marker_state.B_M, marker_state.classes,
            residual_without_markers - F_markers, w, tau_F, precision, log_pi, prior.spike,
        )
        F_markers, chol_ok = residual_without_markers - residual, jnp.array(True)
    prior_state = prior.sample(key_prior, marker_state.prior, B_M, classes, tau_F)
    ok = chol_ok & _finite(B_M, prior_state, _clip_to_finite(prior.site_table(prior_state)[0]))
    return MarkerState(B_M=B_M, classes=classes, prior=prior_state, fitted=F_markers), F_markers, ok


def _clip_to_finite(x):
    """x with +inf (a spike's precision) replaced by the largest finite number of its dtype."""
    return x.clip(max=jnp.finfo(x.dtype).max)


def _no_failure() -> Int[Array, "2"]:
    return jnp.array(NO_FAILURE, dtype=jnp.int32)


def _earlier_failure(first: Int[Array, "2"], then: Int[Array, "2"]) -> Int[Array, "2"]:
    """The failure record of two consecutive stretches of sweeps: the first one's if it failed."""
    return jnp.where(first[0] >= 0, first, then)


def _sweeps(data, state, chain_key, start, stop):
    """Sweeps start..stop-1 of one chain; returns (state, failure record (first failing sweep, its bits))."""

    def body(t, carry):
        state, record = carry
        state, failed = sweep(jax.random.fold_in(chain_key, t), state, data)
        this = jnp.stack([jnp.asarray(t, jnp.int32), failed])
        return state, jnp.where((record[0] < 0) & (failed != 0), this, record)

    return lax.fori_loop(start, stop, body, (state, _no_failure()))


def _no_records(state, data, sums, draw):
    """The record function of a warm-up with nothing recorded: no draws, no running means."""
    return {}, sums


def run_warmup(data: SamplerData, states: State, chain_keys: PRNGKeyArray, start, stop, *,
               accumulators: PyTree = None, num_draws: int = 1, record_fn=_no_records, sharding=None):
    """Sweeps start..stop-1 for every chain (vmapped), nothing recorded; start/stop are traced.

    It runs ``run_draws``'s compiled loop (one step of stop - start sweeps, ``record=False``), so
    a run that passes the ``accumulators``, ``num_draws`` and ``record_fn`` of its draws compiles
    the sweep once for warm-up and sampling together. Returns (states, failure records (chains, 2):
    first failing sweep or -1, its failure bits).
    """
    with unrolled_threefry():  # as slamjax's entry points compile it (_lowering.py)
        if accumulators is None:
            accumulators = jax.vmap(lambda s: {})(states)
        states, _, _, failures = run_draws(data, states, chain_keys, accumulators, start, 1, stop - start, False, 0,
                                           num_draws=num_draws, record_fn=record_fn, sharding=sharding)
    return states, failures


@functools.partial(jax.jit, static_argnames=("num_draws", "record_fn", "sharding"))
def run_draws(
    data: SamplerData,
    states: State,
    chain_keys: PRNGKeyArray,
    accumulators: PyTree,
    start,
    n_valid,
    thin,
    record,
    first_draw,
    *,
    num_draws: int,
    record_fn,
    sharding=None,
):
    """``num_draws`` recorded draws, ``thin`` sweeps apart, from sweep ``start`` on, for every chain.

    ``record_fn(state, data, sums, draw) -> (draws, sums)`` gives the quantities kept per draw and
    adds the draw to the running sums (``accumulators``); ``draw`` is the draw's index in the run
    (``first_draw`` + its position in this call), so that a record function that counts some
    draws only (``posterior.record_function``'s ``covariance_every``) counts the same draws
    however a run is cut into calls. Only the first ``n_valid`` draws are made (traced: the tail
    of the last chunk is skipped without compiling another shape): past them the states,
    running-mean sums and failure records are left as they are and the draws are zeros, so the
    states returned are those after sweep ``start + n_valid * thin`` and a run continues from
    there exactly. ``n_valid``, ``thin``, ``record`` and ``first_draw`` are the same for every
    chain, so under ``vmap`` the branches stay real branches (no work is done past ``n_valid``).
    With ``record`` False the sweeps run and nothing is recorded (the warm-up: ``run_warmup``), so
    one compiled loop serves both. Returns (states, accumulators, draws, failure records (chains,
    2), as ``run_warmup``'s). ``sharding`` (``_sharding.TraitSharding``): the layout of traits and
    chains over several devices, stated on entry; XLA partitions the loop to match.
    """
    if sharding is not None:
        data, states, chain_keys, accumulators = sharding.constrain(data, states, chain_keys, accumulators)

    def one_chain(state, chain_key, accumulator):
        draw_shapes = jax.eval_shape(lambda s, a: record_fn(s, data, a, 0)[0], state, accumulator)

        def sweeps(state, first):
            return _sweeps(data, state, chain_key, first, first + thin)

        def no_sweeps(state, first):
            return state, _no_failure()

        def recorded(state, accumulator, draw):
            draws, accumulator = record_fn(state, data, accumulator, draw)
            return accumulator, draws

        def not_recorded(state, accumulator, draw):
            return accumulator, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), draw_shapes)

        def body(carry, i):  # the sweep and the record each appear once in the compiled loop
            state, accumulator, failures = carry
            valid = i < n_valid
            state, failed = lax.cond(valid, sweeps, no_sweeps, state, start + i * thin)
            accumulator, draws = lax.cond(valid & record, recorded, not_recorded, state, accumulator, first_draw + i)
            return (state, accumulator, _earlier_failure(failures, failed)), draws

        (state, accumulator, failures), draws = lax.scan(
            body, (state, accumulator, _no_failure()), jnp.arange(num_draws)
        )
        return state, accumulator, draws, failures

    return jax.vmap(one_chain)(states, chain_keys, accumulators)
