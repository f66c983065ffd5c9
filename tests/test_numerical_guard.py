"""The NaN guard: every block of a sweep reports non-finite draws, and sj.sample names the block,
the sweep and the chain of the first failure."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import slamjax as sj
import slamjax.sampler as sampler
from slamjax.blocks.rotation import sample_factor_rotation
from slamjax.random_effects.eigen import EigenRandomEffect
from slamjax.sampler import BLOCK_NAMES, block_order, run_warmup, sweep

from _models import prior_state, tiny_model

NAN = float("nan")


def _named(block: str) -> int:
    return next(i for i, name in enumerate(BLOCK_NAMES) if name.startswith(block))


def _failed(bits: int, collapsed: bool) -> list[str]:
    return [BLOCK_NAMES[i] for i in block_order(collapsed) if int(bits) >> i & 1]


def _sweep_bits(model, state=None, data=None) -> int:
    """Failure bits of one sweep (a fresh trace, so monkeypatched blocks are used)."""
    data = model.data if data is None else data
    state = prior_state(model) if state is None else state
    _, bits = jax.jit(lambda key, state, data: sweep(key, state, data))(jax.random.key(0), state, data)
    return int(bits)


def _first_failure(model, **kwargs) -> str:
    failed = _failed(_sweep_bits(model, **kwargs), model.h2_draw == "collapsed")
    assert failed, "no block reported a failure"
    return failed[0]


# step 0e reads F, Eta, B and tau before the blocks below: these models leave it out (its own test below)
@pytest.fixture(scope="module")
def collapsed():
    return tiny_model(exchange_factors=False, rescale_factors=False)


@pytest.fixture(scope="module")
def conditional():
    return tiny_model(h2_draw="conditional", exchange_factors=False, rescale_factors=False)


def test_a_finite_sweep_reports_nothing(collapsed, conditional):
    assert _sweep_bits(collapsed) == 0
    assert _sweep_bits(conditional) == 0


@pytest.mark.parametrize("block, corrupt", [
    ("factor rotation", lambda m, s: (eqx.tree_at(lambda s: s.F, s, s.F.at[0, 0].set(NAN)), m.data)),
    ("trait h2", lambda m, s: (eqx.tree_at(lambda s: s.Eta, s, s.Eta.at[3, 1].set(NAN)), m.data)),
    ("trait random effects", lambda m, s: (s, eqx.tree_at(lambda d: d.re.sigma, m.data, m.data.re.sigma.at[0].set(NAN)))),
    ("factor h2", lambda m, s: (s, eqx.tree_at(lambda d: d.F_tau_rate, m.data, jnp.asarray(NAN)))),
    ("Lambda shrinkage", lambda m, s: (s, eqx.tree_at(lambda d: d.Lambda_prior.delta_1_rate, m.data, NAN))),
    ("B shrinkage", lambda m, s: (s, eqx.tree_at(lambda d: d.B_prior.row_rate, m.data, NAN))),
    ("B_F shrinkage", lambda m, s: (s, eqx.tree_at(lambda d: d.B_F_prior.row_rate, m.data, NAN))),
])
def test_a_non_finite_input_is_reported_by_the_block_that_reads_it(collapsed, block, corrupt):
    state, data = corrupt(collapsed, prior_state(collapsed))
    assert _first_failure(collapsed, state=state, data=data).startswith(block)


def test_the_exchange_step_reports_a_non_finite_F_first():
    """With step 0e on ("auto" at this size, tests/_models.py) it is the first block that reads F."""
    model = tiny_model()
    assert model.data.exchange_factors
    state = prior_state(model)
    state = eqx.tree_at(lambda s: s.F, state, state.F.at[0, 0].set(NAN))
    assert _first_failure(model, state=state).startswith("factor-trait variance exchange")


@pytest.mark.parametrize("block, corrupt", [
    ("trait regressions", lambda d: eqx.tree_at(lambda d: d.tau_rate, d, jnp.asarray(NAN))),
    ("factor regressions", lambda d: eqx.tree_at(lambda d: d.F_tau_rate, d, jnp.asarray(NAN))),
])
def test_regressions_fail_first_when_h2_is_drawn_after_them(conditional, block, corrupt):
    assert _first_failure(conditional, data=corrupt(conditional.data)).startswith(block)


def test_imputation_reports_non_finite_latent_traits():
    model = tiny_model(fraction_missing=0.2)
    obs = model.data.observation
    observed = np.argwhere(np.asarray(obs.observed))[0]
    data = eqx.tree_at(lambda d: d.observation.Y_filled, model.data, obs.Y_filled.at[tuple(observed)].set(NAN))
    assert _failed(_sweep_bits(model, data=data), True) == [BLOCK_NAMES[_named("observation model")]]


def test_missing_data_groups_report_their_h2_draw():
    model = tiny_model(fraction_missing=0.3, missing="groups")
    assert model.data.groups is not None
    groups = model.data.groups
    data = eqx.tree_at(lambda d: d.groups.Y_group, model.data, groups.Y_group.at[0, 0, 0].set(NAN))
    assert _first_failure(model, data=data).startswith("trait h2")


def test_conditional_h2_draw_reports_a_non_finite_log_likelihood(conditional, monkeypatch):
    original = EigenRandomEffect.h2_log_likelihood
    monkeypatch.setattr(EigenRandomEffect, "h2_log_likelihood",
                        lambda self, resid, tau: original(self, resid, tau).at[0, 0].set(NAN))
    failed = _failed(_sweep_bits(conditional), collapsed=False)
    assert failed[0].startswith("trait h2") and not any(name.startswith("trait regressions") for name in failed)


def test_factor_random_effects_report_non_finite_draws(collapsed, monkeypatch):
    original = EigenRandomEffect.sample_effects
    k = collapsed.shapes["k"]

    def factors_nan(self, key, resid, h2_index, tau):
        effects = original(self, key, resid, h2_index, tau)
        return effects * NAN if resid.shape[1] == k else effects  # the factors' call only (p != k)

    monkeypatch.setattr(EigenRandomEffect, "sample_effects", factors_nan)
    assert _first_failure(collapsed).startswith("factor random effects")


def test_factor_scores_report_a_failed_factorisation(collapsed, monkeypatch):
    original = sampler.sample_factor_scores
    monkeypatch.setattr(sampler, "sample_factor_scores", lambda *a: (original(*a)[0], jnp.array(False)))
    assert _first_failure(collapsed).startswith("factor scores")


def test_rotation_gives_nan_for_non_finite_terms_and_keeps_huge_concentrations(collapsed):
    state = prior_state(collapsed)
    data = collapsed.data
    arguments = dict(
        re=data.re, F=state.F, X_F=data.X_F, B_F=state.B_F, Lambda=state.Lambda, F_h2_index=state.F_h2_index,
        tau_F=state.tot_F_prec, B_F_precision=data.B_F_prior.precision(state.B_F_prior),
        Lambda_precision=data.Lambda_prior.precision(state.Lambda_prior), tau=state.tot_Eta_prec,
    )
    rotate = jax.jit(lambda key, **kw: sample_factor_rotation(key, **kw))
    huge = {**arguments, "Lambda_precision": arguments["Lambda_precision"] * 1e25}  # kappa ~ 1e25: finite
    assert all(np.all(np.isfinite(np.asarray(x))) for x in rotate(jax.random.key(1), **huge))
    infinite = {**arguments, "Lambda_precision": arguments["Lambda_precision"].at[1, 0].set(jnp.inf)}
    F, B_F, Lambda, _ = rotate(jax.random.key(1), **infinite)
    assert not np.all(np.isfinite(np.asarray(F))), "a non-finite pair must not be kept silently"


def _nan_scores_at(monkeypatch, chain_keys, failures):
    """Monkeypatches the factor-score block to return NaN at the given (chain, sweep) pairs: it
    recognises the key that sweep t of that chain gives it (sweep's keys[2])."""
    targets = np.stack([
        np.asarray(jax.random.key_data(jax.random.split(jax.random.fold_in(chain_keys[c], t), 8)[2]))
        for c, t in failures
    ])
    original = sampler.sample_factor_scores

    def nan_scores(key, *arguments):
        F, ok = original(key, *arguments)
        hit = jnp.any(jnp.all(jax.random.key_data(key)[None] == targets, axis=-1))
        return jnp.where(hit, jnp.nan, F), ok

    monkeypatch.setattr(sampler, "sample_factor_scores", nan_scores)
    sampler.run_draws.clear_cache()  # the compiled loop (warm-up and draws) would keep the original block


@pytest.fixture
def fresh_loops():
    yield
    sampler.run_draws.clear_cache()  # drop the loop compiled with a monkeypatched block


def test_loops_keep_the_first_failing_sweep_of_each_chain(collapsed, monkeypatch, fresh_loops):
    chain_keys = jax.random.split(jax.random.key(4), 3)
    _nan_scores_at(monkeypatch, chain_keys, [(0, 2), (2, 5), (0, 4)])
    states = jax.vmap(lambda key: prior_state(collapsed, seed=1))(chain_keys)  # noqa: ARG005
    _, records = run_warmup(collapsed.data, states, chain_keys, 0, 8)
    records = np.asarray(records)
    scores = 1 << _named("factor scores")
    assert records[1].tolist() == [-1, 0]
    assert records[0, 0] == 2 and records[2, 0] == 5
    assert records[0, 1] & scores and records[2, 1] & scores
    assert _failed(records[0, 1], True)[0].startswith("factor scores")


def test_sample_names_block_sweep_and_chain(collapsed, monkeypatch, fresh_loops):
    chain_keys = jax.random.split(jax.random.key(7), 2)
    _nan_scores_at(monkeypatch, chain_keys, [(1, 6), (0, 7)])  # sweeps 7 and 8, counted from 1
    with pytest.raises(sj.NumericalError, match=r"block 'factor scores F.*at sweep 7 \(sampling\) of chain 1.*"
                                                r"also chain 0 at sweep 8") as error:
        sj.sample(collapsed, num_warmup=6, num_samples=4, num_chains=2, chain_keys=chain_keys, chunk_size=2,
                  progress=False)
    assert (error.value.sweep, error.value.chain) == (7, 1)
    with pytest.raises(sj.NumericalError, match=r"at sweep 4 \(warm-up\) of chain 0"):
        _nan_scores_at(monkeypatch, chain_keys, [(0, 3)])
        sj.sample(collapsed, num_warmup=6, num_samples=4, num_chains=2, chain_keys=chain_keys, chunk_size=2,
                  progress=False)


def test_a_prior_state_whose_precision_overflows_is_reported(collapsed, monkeypatch):
    """Finite shrinkage parameters can give an infinite precision (the product of the column
    shrinkages overflows): the prior's block is named, not the next sweep's rotation."""
    from slamjax.priors.mgps import MGPS

    original = MGPS.sample
    monkeypatch.setattr(MGPS, "sample", lambda self, key, state, coef, tau: eqx.tree_at(
        lambda s: s.delta, original(self, key, state, coef, tau), jnp.full(state.delta.shape, 1e200)))
    assert _first_failure(collapsed).startswith("Lambda shrinkage")
