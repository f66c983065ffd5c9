"""Several random effects (the cholesky and woodbury backends): the h2 simplex grid and its prior, closed-form
checks of the new conditionals, and agreement with the eigen backend for one random effect."""

from __future__ import annotations

from math import comb

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import scipy.special

import slamjax as sj

from _models import Q, random_design
from _stats import Z_BOUND, z_mean, z_variance_normal


@pytest.mark.parametrize("R, d", [(1, 2), (1, 20), (2, 5), (2, 10), (3, 4), (3, 10)])
def test_grid_size_and_prior_weights(R, d):
    grid = sj.h2_grid(R, d)
    assert grid.shape == (comb(d - 1 + R, R), R)
    assert np.all(grid >= 0) and np.all(grid.sum(axis=1) < 1)
    assert len({tuple(row) for row in grid}) == grid.shape[0]
    from slamjax.grid import h2_log_prior

    for prior in (None, lambda g: 1.0 + g[:, 0], np.arange(1, grid.shape[0] + 1)):
        np.testing.assert_allclose(np.exp(h2_log_prior(grid, prior)).sum(), 1.0)


def two_effect_model(n=24, p=3, groups=5, seed=0, h2_divisions=4, backend="cholesky", priors=None, n_factors=1):
    rng = np.random.default_rng(seed)
    ids = [f"i{i}" for i in range(n)]
    data = pd.DataFrame({"id": ids, "cage": [f"c{i % groups}" for i in range(n)]}, index=ids)
    _, K = random_design(n, n, seed)
    Y = pd.DataFrame(rng.normal(size=(n, p)), index=ids, columns=[f"y{j}" for j in range(p)])
    model = sj.Model(
        Y=Y, data=data, formula="~ 1 + (1|id) + (1|cage)", relmat={"id": pd.DataFrame(K, index=ids, columns=ids)},
        n_factors=n_factors, h2_divisions=h2_divisions, scale_Y=False, backend=backend, priors=priors,
    )
    return model


@pytest.mark.parametrize("backend", ["cholesky", "woodbury"])
def test_two_effects_h2_probabilities_match_enumeration(backend):
    model = two_effect_model(backend=backend)
    assert model.backend == backend and model.effect_names == ["id", "cage"]
    data = model.data
    (Z1, Z2), (K1, K2) = model.Zs, model.Ks
    rng = np.random.default_rng(1)
    n = Z1.shape[0]
    resid = rng.normal(size=(n, 3))
    tau = np.array([0.7, 1.0, 1.6])
    got = np.asarray(data.re.h2_log_likelihood(jnp.asarray(Q(model).T @ resid), jnp.asarray(tau)))
    got = got - scipy.special.logsumexp(got, axis=1, keepdims=True)
    for j in range(3):
        expected = []
        for h1, h2 in np.asarray(data.h2_grid):
            V = (h1 * Z1 @ K1 @ Z1.T + h2 * Z2 @ K2 @ Z2.T + (1 - h1 - h2) * np.eye(n)) / tau[j]
            expected.append(-0.5 * np.linalg.slogdet(V)[1] - 0.5 * resid[:, j] @ np.linalg.solve(V, resid[:, j]))
        expected = np.array(expected) - scipy.special.logsumexp(expected)
        np.testing.assert_allclose(got[j], expected, atol=1e-9)


@pytest.mark.parametrize("backend", ["cholesky", "woodbury"])
def test_two_effects_random_effect_draws(backend):
    """[U_1; U_2] | e ~ N(P^-1 tau Z'e / (1 - h1 - h2), P^-1), P = tau (Z'Z/(1-h1-h2) + diag(K1^-1/h1, K2^-1/h2))."""
    model = two_effect_model(backend=backend)
    re = model.random_effect
    (Z1, Z2), (K1, K2) = model.Zs, model.Ks
    grid = np.asarray(model.data.h2_grid)
    rows = [int(np.flatnonzero((grid == [0.25, 0.5]).all(1))[0]), int(np.flatnonzero((grid == [0.5, 0.0]).all(1))[0])]
    tau = np.array([1.3, 0.8])
    rng = np.random.default_rng(2)
    resid = rng.normal(size=(Z1.shape[0], 2))
    rotated = jnp.asarray(Q(model).T @ resid)
    draw = jax.jit(jax.vmap(lambda key: re.to_levels(re.sample_effects(key, rotated, jnp.asarray(rows), jnp.asarray(tau)))))
    U = np.asarray(draw(jax.random.split(jax.random.key(3), 4000)))
    Z = np.hstack([Z1, Z2])
    r1 = Z1.shape[1]
    for j, g in enumerate(rows):
        h1, h2 = grid[g]
        if h2 == 0:
            assert np.all(U[:, r1:, j] == 0)
            Zj, Kinv, cols = Z1, np.linalg.inv(K1) / h1, slice(0, r1)
        else:
            Zj, cols = Z, slice(None)
            Kinv = np.block([[np.linalg.inv(K1) / h1, np.zeros((r1, K2.shape[0]))],
                             [np.zeros((K2.shape[0], r1)), np.linalg.inv(K2) / h2]])
        P = tau[j] * (Zj.T @ Zj / (1 - h1 - h2) + Kinv)
        cov = np.linalg.inv(P)
        mean = cov @ (tau[j] * Zj.T @ resid[:, j] / (1 - h1 - h2))
        draws = U[:, cols, j]
        assert np.all(np.abs(z_mean(draws, mean, np.sqrt(np.diag(cov)))) < Z_BOUND)
        assert np.all(np.abs(z_variance_normal(draws, np.diag(cov))) < Z_BOUND)


def test_several_effects_outputs_are_keyed_by_group():
    model = two_effect_model(n=30, p=3)
    run = sj.sample(model, num_warmup=10, num_samples=10, progress=False)
    G = run.posterior_mean("G")
    assert set(G) == {"id", "cage"} and G["cage"].shape == (3, 3)
    U = run.posterior_mean("U")
    assert list(U["cage"].index) == [f"c{i}" for i in range(5)]
    h2 = run.posterior_mean("h2")
    assert list(h2.columns) == ["id", "cage"] and list(h2.index) == ["y0", "y1", "y2"]
    assert run.posterior["h2"].dims == ("chain", "draw", "effect", "trait")
    P = run.posterior_mean("P").values
    np.testing.assert_allclose(P, G["id"].values + G["cage"].values + run.posterior_mean("R").values)


def test_memory_refusal():
    with pytest.raises(sj.SlamjaxInputError, match=r"memory.*GiB.*h2_divisions"):
        from slamjax.random_effects._plan import _check_memory

        _check_memory("cholesky", 20_000, (20_000, 500), 1540, 100)


def test_h2_prior_as_independent_marginals():
    from slamjax.grid import h2_log_prior

    grid = sj.h2_grid(2, 5)
    f1 = lambda h: 1.0 + h  # noqa: E731
    f2 = lambda h: np.exp(-3.0 * h)  # noqa: E731
    weights = np.exp(h2_log_prior(grid, [f1, f2]))
    expected = f1(grid[:, 0]) * f2(grid[:, 1])
    np.testing.assert_allclose(weights, expected / expected.sum())
    with pytest.raises(sj.SlamjaxInputError, match="marginal functions"):
        h2_log_prior(grid, [f1])
    with pytest.raises(sj.SlamjaxInputError, match="one weight per grid point"):
        h2_log_prior(grid, np.ones(3))
    prior_model = two_effect_model(priors=sj.Priors(h2=[f1, f2]))
    np.testing.assert_allclose(
        np.exp(np.asarray(prior_model.data.trait_log_prior)), np.exp(h2_log_prior(prior_model.grid, [f1, f2]))
    )


def test_per_column_products_agree_on_both_paths(monkeypatch):
    """Gathering each column's factor and computing every grid point then selecting agree."""
    from slamjax.random_effects import cholesky

    rng = np.random.default_rng(5)
    factors = jnp.asarray(rng.normal(size=(6, 7, 7)))
    vectors = jnp.asarray(rng.normal(size=(4, 7)))
    index = jnp.array([5, 0, 0, 3])
    for transpose in (False, True):
        gathered = cholesky._apply_per_column(factors, vectors, index, transpose)
        monkeypatch.setattr(cholesky, "_GATHER_BYTES", 0)
        selected = cholesky._apply_per_column(factors, vectors, index, transpose)
        monkeypatch.undo()
        expected = np.stack([(np.asarray(factors[g]).T if transpose else np.asarray(factors[g])) @ np.asarray(v)
                             for g, v in zip(index, vectors)])
        np.testing.assert_allclose(gathered, expected, rtol=1e-12)
        np.testing.assert_allclose(selected, expected, rtol=1e-12)


def test_eigen_and_cholesky_agree_for_one_random_effect():
    """Same data, one random effect: identical h2 grid probabilities and regression statistics
    for a fixed state (in each backend's own coordinates), to 1e-8."""
    from _models import prior_state, tiny_model

    eigen, chol = tiny_model(r=12, backend="eigen"), tiny_model(r=12, backend="cholesky")
    state = prior_state(eigen)
    Qm = Q(eigen)
    rng = np.random.default_rng(7)
    resid = rng.normal(size=(30, 4))
    tau = jnp.asarray(rng.uniform(0.5, 2.0, 4))
    a = np.asarray(eigen.data.re.h2_log_likelihood(jnp.asarray(Qm.T @ resid), tau))
    b = np.asarray(chol.data.re.h2_log_likelihood(jnp.asarray(resid), tau))
    np.testing.assert_allclose(a - scipy.special.logsumexp(a, axis=1, keepdims=True),
                               b - scipy.special.logsumexp(b, axis=1, keepdims=True), atol=1e-8)
    W_rot = np.column_stack([np.asarray(eigen.data.X), np.asarray(state.F)])
    index = jnp.array([0, 2, 4, 1])
    for got, expected in zip(
        eigen.data.re.regression_statistics(state.Eta, jnp.asarray(W_rot), index),
        chol.data.re.regression_statistics(jnp.asarray(Qm @ np.asarray(state.Eta)), jnp.asarray(Qm @ W_rot), index),
    ):
        np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-8)


@pytest.mark.slow
def test_eigen_and_cholesky_give_the_same_posterior():
    """Posterior means of h2 and G from both backends agree within Monte Carlo error."""
    ds = sj.datasets.simulate(n=60, p=4, k=2, seed=3)
    means, errors = {}, {}
    for backend in ("eigen", "cholesky"):
        model = sj.Model(Y=ds.Y, K=ds.relmat["id"], n_factors=2, h2_divisions=10, backend=backend)
        run = sj.sample(model, num_warmup=500, num_samples=1500, thin=2, num_chains=2, seed=1, progress=False)
        import arviz as az

        summary = az.summary(run.datatree, var_names=["h2", "G"], round_to="none")
        means[backend], errors[backend] = summary["mean"].values, summary["mcse_mean"].values
    z = (means["eigen"] - means["cholesky"]) / np.sqrt(errors["eigen"] ** 2 + errors["cholesky"] ** 2)
    assert np.all(np.abs(z) < Z_BOUND), z


def test_prior_can_rule_out_a_share():
    """Zero prior weight on grid points (here: a factor share of the cage effect) is never visited,
    from the first state on: the factors carry no cage variance."""
    from slamjax.state import init_state

    no_cage = 1.0 * (sj.h2_grid(2, 4)[:, 1] == 0)
    model = two_effect_model(n=30, p=3, backend="woodbury", priors=sj.Priors(F_h2=no_cage), n_factors=2)
    start = init_state(jax.random.key(0), model.data)
    assert np.all(no_cage[np.asarray(start.F_h2_index)] == 1)
    run = sj.sample(model, num_warmup=5, num_samples=30, progress=False)
    assert np.all(run.draws["F_h2"][:, :, 1, :] == 0)
    assert np.any(run.draws["h2"][:, :, 1, :] > 0)  # the traits keep theirs
