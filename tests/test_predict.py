"""Run.predict: genetic values for every level of K (with and without data), fitted values, and
posterior intervals / draws from the genetic values recorded per draw."""

from __future__ import annotations

import copy

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from _models import prior_state, tiny_model
from _stats import Z_BOUND, z_mean, z_variance_normal

import slamjax as sj
from slamjax.posterior import record_function, running_template
from slamjax.run import Run
from slamjax.sampler import run_draws

def _record(state, data, genetic_values=False):
    """(draws, running sums after this draw from zero) of one draw."""
    return record_function(False, genetic_values)(state, data, running_template(data), 0)


N_DRAWS = 4000
N, R_LEVELS, P = 24, 40, 4  # levels N..R_LEVELS-1 of K have no data (columns of Z are zero)
SETTINGS = dict(num_warmup=20, num_samples=15, thin=2, chunk_size=10, progress=False)


@pytest.fixture(scope="module")
def model():
    return tiny_model(n=N, r=R_LEVELS, p=P, k=2)


@pytest.fixture(scope="module")
def run(model):
    return sj.sample(model, num_chains=2, seed=3, record_genetic_values=True, **SETTINGS)


@pytest.mark.parametrize("backend", ["eigen", "cholesky"])
def test_levels_without_data_get_the_conditional_expectation_under_K(backend):
    """With everything else fixed, draw U_R and U_F from their conditionals and record U = U_F Lambda
    + U_R: at levels without data E[U_new | data] = K_no K_oo^-1 E[U_obs | data], because
    U_new - K_no K_oo^-1 U_obs ~ N(0, S v_j) independently of the data, S = K_nn - K_no K_oo^-1 K_on,
    v_j = h2_j / tau_j + sum_h Lambda_hj^2 h2F_h / tauF_h."""
    model = tiny_model(n=N, r=R_LEVELS, p=P, k=2, intercept_precision=0.5, backend=backend)
    data, re = model.data, model.random_effect
    Z, K = model.inputs.Z, model.inputs.K
    observed_levels = Z.sum(axis=0) > 0
    assert observed_levels.sum() == N and not observed_levels[N:].any()
    state = prior_state(model, seed=2)
    h2_index, F_h2_index = jnp.array([1, 3, 2, 4]), jnp.array([2, 3])
    state = eqx.tree_at(lambda s: (s.resid_h2_index, s.F_h2_index), state, (h2_index, F_h2_index))
    resid = state.Eta - data.X @ state.B - state.F @ state.Lambda
    F_resid = state.F - data.X_F @ state.B_F

    def draw(key):
        key_R, key_F = jax.random.split(key)
        U_R = re.sample_effects(key_R, resid, h2_index, state.tot_Eta_prec)
        U_F = re.sample_effects(key_F, F_resid, F_h2_index, state.tot_F_prec)
        draws, _ = _record(eqx.tree_at(lambda s: (s.U_R, s.U_F), state, (U_R, U_F)), data, genetic_values=True)
        return draws["U"]

    U = np.asarray(jax.jit(jax.vmap(draw))(jax.random.split(jax.random.key(7), N_DRAWS)))  # (draws, r, p)
    o, new = observed_levels, ~observed_levels
    A = K[np.ix_(new, o)] @ np.linalg.inv(K[np.ix_(o, o)])
    S = K[np.ix_(new, new)] - A @ K[np.ix_(o, new)]
    grid = np.asarray(data.h2_grid[:, 0])
    tau, tau_F, Lambda = (np.asarray(x) for x in (state.tot_Eta_prec, state.tot_F_prec, state.Lambda))
    v = grid[np.asarray(h2_index)] / tau + (Lambda**2 * (grid[np.asarray(F_h2_index)] / tau_F)[:, None]).sum(axis=0)
    expected_var = np.diag(S)[:, None] * v[None, :]  # (new levels, p)
    gap = U[:, new] - np.einsum("lo,dop->dlp", A, U[:, o])
    z = z_mean(gap, 0.0, np.sqrt(expected_var))  # = (mean(U_new) - A mean(U_obs)) / its Monte Carlo sd
    assert np.all(np.abs(z) < Z_BOUND), np.abs(z).max()
    assert np.all(np.abs(z_variance_normal(gap, expected_var)) < Z_BOUND)
    # the levels with data do move with the data: their mean is not the prior mean 0
    assert np.abs(U[:, o].mean(axis=0)).max() > 10 * np.sqrt(expected_var.max() / N_DRAWS)


def test_record_functions_keep_their_outputs(model):
    state = prior_state(model)
    plain, _running = _record(state, model.data)
    with_U, running_U = _record(state, model.data, genetic_values=True)
    assert "U" not in plain and set(with_U) == set(plain) | {"U"}
    assert with_U["U"].shape == (R_LEVELS, P)
    for name in plain:
        np.testing.assert_array_equal(plain[name], with_U[name])
    np.testing.assert_allclose(with_U["U"], model.random_effect.to_levels(running_U["U"]), rtol=1e-12)
    # the same function object for the same options: a static argument of the compiled loop
    assert record_function(False, True) is record_function(False, True)


def test_genetic_values_for_every_level(model, run):
    U = run.predict()
    assert isinstance(U, pd.DataFrame) and U.shape == (R_LEVELS, P)
    assert list(U.index) == model.level_names and list(U.columns) == model.trait_names
    assert np.all(np.isfinite(U.values))
    assert np.any(U.iloc[N:].values != 0)  # levels without data are predicted through K
    pd.testing.assert_frame_equal(U, run.posterior_mean("U"))
    subset = run.predict(levels=["level30", "level2"])
    pd.testing.assert_frame_equal(subset, U.loc[["level30", "level2"]])
    intercept = run.draws["B"][:, :, 0, :].mean(axis=(0, 1))
    np.testing.assert_allclose(run.predict(fixed=True).values, U.values + intercept[None, :], rtol=1e-12)


def test_fitted_values(model, run):
    fitted = run.predict("fitted")
    assert fitted.shape == (N, P) and list(fitted.index) == model.individual_names
    assert list(fitted.columns) == model.trait_names
    pd.testing.assert_frame_equal(fitted, run.posterior_mean("Eta_mean"))
    pd.testing.assert_frame_equal(run.predict("fitted", levels="ind3"), fitted.loc[["ind3"]])


def test_recorded_draws_intervals_and_compile_reuse(model, run):
    draws = run.predict(draws=True)
    assert draws.dims == ("chain", "draw", "level", "trait") and draws.shape == (2, 15, R_LEVELS, P)
    assert list(draws.coords["level"].values) == model.level_names
    assert list(draws.coords["trait"].values) == model.trait_names
    np.testing.assert_allclose(draws.mean(("chain", "draw")).values, run.predict().values, rtol=1e-10, atol=1e-13)
    fixed = run.predict(draws=True, fixed=True, levels=["level35"])
    np.testing.assert_allclose(fixed.values, draws.sel(level=["level35"]).values + run.draws["B"][:, :, None, 0, :])
    interval = run.predict(interval=0.8, levels=["level1", "level39"])
    assert set(interval) == {"mean", "lower", "upper"}
    pooled = draws.sel(level=["level1", "level39"]).values.reshape(30, 2, P)
    np.testing.assert_allclose(interval["lower"].values, np.quantile(pooled, 0.1, axis=0))
    np.testing.assert_allclose(interval["upper"].values, np.quantile(pooled, 0.9, axis=0))
    assert np.all(interval["lower"].values <= interval["upper"].values)
    assert list(interval["mean"].index) == ["level1", "level39"]
    assert "U" not in run.posterior  # the datatree stays light
    # a second run of the same shapes reuses the compiled loops (record_fn is a module-level function)
    before = run_draws._cache_size()  # warm-up and draws: one compiled loop
    again = sj.sample(model, num_chains=2, seed=4, record_genetic_values=True, **SETTINGS)
    assert run_draws._cache_size() == before
    assert again.predict(draws=True).shape == draws.shape


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(what="breeding"), "what must be"),
        (dict(effect="cage"), "unknown effect"),
        (dict(levels=["level0", "nope"]), "not levels"),
        (dict(what="fitted", levels=["level0"]), "not individuals"),
        (dict(interval=1.5), "interval"),
        (dict(interval=0.9, draws=True), "either"),
        (dict(what="fitted", interval=0.9), "genetic values only"),
        (dict(what="fitted", fixed=True), "genetic"),
    ],
)
def test_bad_arguments(run, kwargs, message):
    with pytest.raises(sj.SlamjaxInputError, match=message):
        run.predict(**kwargs)


def test_intervals_need_recorded_draws(run):
    unrecorded = copy.copy(run)
    unrecorded.draws = {name: value for name, value in run.draws.items() if name != "U"}
    unrecorded.predict()  # means need nothing more
    for kwargs in (dict(interval=0.9), dict(draws=True)):
        with pytest.raises(sj.SlamjaxInputError, match="record_genetic_values=True"):
            unrecorded.predict(**kwargs)


def test_several_effects_pick_one():
    """The bookkeeping of several random effects, on a Run built from known numbers (no sampling)."""
    rng = np.random.default_rng(0)
    n, p, cages = 12, 3, 4
    ids = [f"i{i}" for i in range(n)]
    data = pd.DataFrame({"id": ids, "cage": [f"c{i % cages}" for i in range(n)]}, index=ids)
    M = rng.normal(size=(n, 2 * n))
    K = pd.DataFrame(M @ M.T / (2 * n) + 0.1 * np.eye(n), index=ids, columns=ids)
    Y = pd.DataFrame(rng.normal(size=(n, p)), index=ids, columns=["a", "b", "c"])
    model = sj.Model(Y=Y, data=data, formula="~ 1 + (1|id) + (1|cage)", relmat={"id": K}, n_factors=1,
                     h2_divisions=3, backend="cholesky")
    S = n + cages
    level_draws = rng.normal(size=(2, 5, S, p))  # standardised scale, stacked [id; cage]
    L = np.asarray(model.random_effect.L_blocks)
    running = {
        "G": np.zeros((2, p, p)), "R": np.eye(p), "Eta_mean": np.zeros((n, p)),
        "U": np.linalg.solve(L, level_draws.mean(axis=(0, 1))),
    }
    draws = {"B": rng.normal(size=(2, 5, 1, p)), "U": level_draws}
    run = Run(model, draws, running, states=None, settings=dict(num_chains=2, num_samples=5), elapsed=0.0)
    cage = run.predict(effect="cage")
    assert list(cage.index) == model.effect_levels["cage"] == ["c0", "c1", "c2", "c3"]
    expected = level_draws[:, :, n:].mean(axis=(0, 1)) * model.Y_scale
    np.testing.assert_allclose(cage.values, expected, rtol=1e-10)
    pd.testing.assert_frame_equal(run.predict(), run.posterior_mean("U")["id"])
    np.testing.assert_allclose(run.predict(draws=True, effect="cage").values, level_draws[:, :, n:] * model.Y_scale)
    assert list(run.predict(draws=True).coords["level"].values) == ids
    with pytest.raises(sj.SlamjaxInputError, match="not levels of 'cage'"):
        run.predict(effect="cage", levels=["i0"])
