"""Every conditional of the sweep against its closed form, computed in the original
(unrotated) coordinates by brute force: draw many times from one block with the rest fixed and
z-test means and variances, or the uniformity of probability integral transforms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

import slamjax as sj
from slamjax.blocks.factors import sample_factor_scores
from slamjax.blocks.regression import sample_regression
from slamjax.blocks.variance import collapsed_h2_log_likelihood
from slamjax.state import B_precision

from _models import Q, collapsed_h2_log_density, covariance, prior_state, tiny_model
from _stats import Z_BOUND, gamma_pit, inverse_gamma_pit, ordered_delta_checks, z_mean, z_uniform, z_variance_normal

N_DRAWS = 4000
DESIGNS = {"r=n": dict(n=30), "r<n": dict(n=30, r=12), "r>n": dict(n=24, r=40)}


def _keys(seed=0, n=N_DRAWS):
    return jax.random.split(jax.random.key(seed), n)


BACKENDS = ["eigen", "cholesky"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("design", sorted(DESIGNS))
@pytest.mark.parametrize("intercept_precision", [0.0, 0.5])
def test_trait_regression_and_tau(design, intercept_precision, backend):
    """(tau_j, beta_j) jointly: tau by PIT against Gamma, beta | tau standardised to N(0, I)."""
    model = tiny_model(**DESIGNS[design], intercept_precision=intercept_precision, backend=backend)
    data = model.data
    state = prior_state(tiny_model(**DESIGNS[design], intercept_precision=0.5, backend=backend))  # proper prior
    p = model.shapes["p"]
    Qm = Q(model)
    W_rot = np.column_stack([np.asarray(data.X), np.asarray(state.F)])
    W = Qm @ W_rot
    y = Qm @ np.asarray(state.Eta)
    h2_index = np.array([0, 1, 3, 4])[:p]
    D = np.concatenate([np.asarray(B_precision(data, state.B_prior, p)),
                        np.asarray(data.Lambda_prior.precision(state.Lambda_prior))])
    a, b = float(data.tau_shape), float(data.tau_rate)
    n = y.shape[0]
    statistics = data.re.regression_statistics(state.Eta, jnp.asarray(W_rot), jnp.asarray(h2_index))
    draw = jax.jit(jax.vmap(lambda key: sample_regression(
        key, *statistics, jnp.asarray(D), data.tau_shape, data.tau_rate, n, data.n_flat)))
    coef, tau, ok = jax.device_get(draw(_keys()))
    assert ok.all()
    for j in range(p):
        V_inv = np.linalg.inv(covariance(model, float(data.h2_grid[h2_index[j], 0])))
        C = W.T @ V_inv @ W + np.diag(D[:, j])
        rhs = W.T @ V_inv @ y[:, j]
        mean = np.linalg.solve(C, rhs)
        shape = a + 0.5 * (n - data.n_flat)
        rate = b + 0.5 * (y[:, j] @ V_inv @ y[:, j] - rhs @ mean)
        z_m, z_v = z_uniform(gamma_pit(tau[:, j], shape, rate))
        assert abs(z_m) < Z_BOUND and abs(z_v) < Z_BOUND, (j, z_m, z_v)
        standardised = np.sqrt(tau[:, j])[:, None] * (coef[:, :, j] - mean) @ np.linalg.cholesky(C)
        assert np.all(np.abs(z_mean(standardised, 0.0, 1.0)) < Z_BOUND)
        assert np.all(np.abs(z_variance_normal(standardised, 1.0)) < Z_BOUND)


@pytest.mark.parametrize("backend", BACKENDS)
def test_tau_without_coefficients(backend):
    """With no columns in the design (factors without fixed effects) tau_j ~ Gamma(a + n/2, b + y'V^-1 y/2)."""
    model = tiny_model(backend=backend)
    data, state = model.data, prior_state(model)
    h2_index = jnp.array([2, 0])
    n = model.shapes["n"]
    statistics = data.re.regression_statistics(state.F, jnp.zeros((n, 0)), h2_index)
    draw = jax.jit(jax.vmap(lambda key: sample_regression(
        key, *statistics, jnp.zeros((0, 2)), data.F_tau_shape, data.F_tau_rate, n, 0)))
    coef, tau, _ = jax.device_get(draw(_keys()))
    assert coef.shape == (N_DRAWS, 0, 2)
    F = Q(model) @ np.asarray(state.F)
    for j in range(2):
        V_inv = np.linalg.inv(covariance(model, float(data.h2_grid[h2_index[j], 0])))
        shape = float(data.F_tau_shape) + 0.5 * F.shape[0]
        rate = float(data.F_tau_rate) + 0.5 * F[:, j] @ V_inv @ F[:, j]
        z_m, z_v = z_uniform(gamma_pit(tau[:, j], shape, rate))
        assert abs(z_m) < Z_BOUND and abs(z_v) < Z_BOUND


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_h2_probabilities_match_enumeration(design, backend):
    """P(h2 = g | e, tau) against the multivariate normal density with the full n x n V_g."""
    weights = np.array([1.0, 3.0, 0.5, 2.0, 1.0])
    priors = sj.Priors(h2=weights)
    model = tiny_model(**DESIGNS[design], priors=priors, backend=backend)
    data = model.data
    rng = np.random.default_rng(3)
    n, p = model.shapes["n"], model.shapes["p"]
    resid = rng.normal(size=(n, p)) * 1.3
    tau = rng.uniform(0.5, 2.0, p)
    got = np.asarray(data.re.h2_log_likelihood(jnp.asarray(Q(model).T @ resid), jnp.asarray(tau)) + data.trait_log_prior)
    got = np.exp(got - scipy.special.logsumexp(got, axis=1, keepdims=True))
    for j in range(p):
        log_density = []
        for h2 in np.asarray(data.h2_grid[:, 0]):
            V = covariance(model, h2) / tau[j]
            sign, logdet = np.linalg.slogdet(V)
            log_density.append(-0.5 * logdet - 0.5 * resid[:, j] @ np.linalg.solve(V, resid[:, j]))
        expected = np.log(weights / weights.sum()) + np.array(log_density)
        expected = np.exp(expected - scipy.special.logsumexp(expected))
        np.testing.assert_allclose(got[j], expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("design", sorted(DESIGNS))
@pytest.mark.parametrize("intercept_precision", [0.0, 0.5])
def test_collapsed_h2_probabilities_match_enumeration(design, intercept_precision, backend):
    """P(h2 = g | y) marginal over beta, tau and U against the explicit n x n covariances
    (``_models.collapsed_h2_log_density``)."""
    weights = np.array([1.0, 3.0, 0.5, 2.0, 1.0])
    model = tiny_model(**DESIGNS[design], intercept_precision=intercept_precision, backend=backend,
                       priors=sj.Priors(h2=weights, intercept_precision=intercept_precision))
    data = model.data
    state = prior_state(tiny_model(**DESIGNS[design], intercept_precision=0.5, backend=backend))
    p = model.shapes["p"]
    Qm = Q(model)
    W_rot = np.column_stack([np.asarray(data.X), np.asarray(state.F)])
    W, y = Qm @ W_rot, Qm @ np.asarray(state.Eta)
    n = y.shape[0]
    D = np.concatenate([np.asarray(B_precision(data, state.B_prior, p)),
                        np.asarray(data.Lambda_prior.precision(state.Lambda_prior))])
    a, b = float(data.tau_shape), float(data.tau_rate)
    statistics = data.re.regression_statistics_grid(state.Eta, jnp.asarray(W_rot))
    log_likelihood = collapsed_h2_log_likelihood(
        *statistics, data.re.log_det_V, jnp.asarray(D), data.tau_shape, data.tau_rate, n, data.n_flat
    )
    got = np.asarray(log_likelihood + data.trait_log_prior)
    got = np.exp(got - scipy.special.logsumexp(got, axis=1, keepdims=True))
    for j in range(p):
        assert np.sum(D[:, j] == 0) == data.n_flat
        log_density = [collapsed_h2_log_density(model, W, y[:, j], D[:, j], a, b, h2)
                       for h2 in np.asarray(data.h2_grid[:, 0])]
        expected = np.log(weights / weights.sum()) + np.array(log_density)
        expected = np.exp(expected - scipy.special.logsumexp(expected))
        np.testing.assert_allclose(got[j], expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_collapsed_h2_without_coefficients(backend):
    """Factors without fixed effects: the marginal is -1/2 log|V_g| - (a + n/2) log(b + F' V_g^-1 F / 2)."""
    model = tiny_model(backend=backend)
    data, state = model.data, prior_state(model)
    n = model.shapes["n"]
    statistics = data.re.regression_statistics_grid(state.F, jnp.zeros((n, 0)))
    got = np.asarray(collapsed_h2_log_likelihood(
        *statistics, data.re.log_det_V, jnp.zeros((0, 2)), data.F_tau_shape, data.F_tau_rate, n, 0))
    F = Q(model) @ np.asarray(state.F)
    for j in range(2):
        expected = []
        for h2 in np.asarray(data.h2_grid[:, 0]):
            V = covariance(model, h2)
            expected.append(-0.5 * np.linalg.slogdet(V)[1] - (float(data.F_tau_shape) + 0.5 * n)
                            * np.log(float(data.F_tau_rate) + 0.5 * F[:, j] @ np.linalg.solve(V, F[:, j])))
        np.testing.assert_allclose(got[j] - got[j].mean(), np.array(expected) - np.mean(expected), rtol=0, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_statistics_at_every_grid_point_match_those_at_one(backend):
    """regression_statistics_grid gathered at h2_index equals regression_statistics(h2_index)."""
    model = tiny_model(backend=backend)
    data, state = model.data, prior_state(model)
    W = jnp.concatenate([data.X, state.F], axis=1)
    index = jnp.array([4, 0, 2, 1])
    gram, Wy, yy = data.re.regression_statistics_grid(state.Eta, W)
    columns = jnp.arange(4)
    for a, b in zip((gram[index], Wy[index, columns], yy[index, columns]),
                    data.re.regression_statistics(state.Eta, W, index)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_random_effects(design, backend):
    """U | e ~ N(P^-1 tau Z'e / (1 - h2), P^-1), P = tau (Z'Z / (1 - h2) + K^-1 / h2); U = 0 when h2 = 0."""
    model = tiny_model(**DESIGNS[design], backend=backend)
    re = model.random_effect
    Z, K = model.inputs.Z, model.inputs.K
    rng = np.random.default_rng(4)
    n, r = Z.shape
    h2_index = np.array([1, 3, 0, 4])
    h2 = np.asarray(model.data.h2_grid)[h2_index, 0]
    np.testing.assert_allclose(h2, [0.2, 0.6, 0.0, 0.8])
    tau = np.array([1.5, 0.7, 1.0, 2.0])
    resid = rng.normal(size=(n, 4))
    draw = jax.jit(jax.vmap(lambda key: re.to_levels(
        re.sample_effects(key, jnp.asarray(Q(model).T @ resid), jnp.asarray(h2_index), jnp.asarray(tau)))))
    U = np.asarray(draw(_keys()))
    assert np.all(U[:, :, 2] == 0.0)
    for j in (0, 1, 3):
        P = tau[j] * (Z.T @ Z / (1 - h2[j]) + np.linalg.inv(K) / h2[j])
        cov = np.linalg.inv(P)
        mean = cov @ (tau[j] * Z.T @ resid[:, j] / (1 - h2[j]))
        assert np.all(np.abs(z_mean(U[:, :, j], mean, np.sqrt(np.diag(cov)))) < Z_BOUND)
        assert np.all(np.abs(z_variance_normal(U[:, :, j], np.diag(cov))) < Z_BOUND)


def test_factor_scores():
    """Each row F_i ~ N(P^-1 (Lambda diag(w) e_i + diag(w_F) m_i), P^-1), in the original coordinates."""
    model = tiny_model(n=20, p=5, k=3)
    rng = np.random.default_rng(5)
    n, p, k = 20, 5, 3
    Lambda = rng.normal(size=(k, p))
    w = rng.uniform(0.5, 2.0, p)
    w_F = rng.uniform(0.5, 2.0, k)
    e = rng.normal(size=(n, p))
    m = rng.normal(size=(n, k))
    Qm = Q(model)
    draw = jax.jit(jax.vmap(lambda key: sample_factor_scores(
        key, jnp.asarray(Qm.T @ e), jnp.asarray(Lambda), jnp.asarray(w), jnp.asarray(Qm.T @ m), jnp.asarray(w_F))))
    F_rot, ok = draw(_keys())
    assert np.all(np.asarray(ok))
    F = np.einsum("ij,djk->dik", Qm, np.asarray(F_rot))
    P = (Lambda * w) @ Lambda.T + np.diag(w_F)
    cov = np.linalg.inv(P)
    mean = (e @ (Lambda * w).T + m * w_F) @ cov
    sd = np.sqrt(np.diag(cov))[None, :]
    assert np.all(np.abs(z_mean(F, mean, sd)) < Z_BOUND)
    assert np.all(np.abs(z_variance_normal(F, sd**2)) < Z_BOUND)
    # rows are independent: the covariance of two rows' draws is zero
    assert abs(np.corrcoef(F[:, 0, 0], F[:, 1, 0])[0, 1]) * np.sqrt(N_DRAWS) < Z_BOUND


def test_mgps_conditionals():
    prior = sj.priors.MGPS(nu=3.0)
    rng = np.random.default_rng(6)
    k, p = 4, 6
    coef = rng.normal(size=(k, p)) * 0.7
    tau = rng.uniform(0.5, 2.0, p)
    state = prior.init(k, p)
    state = type(state)(phi=jnp.asarray(rng.uniform(0.5, 2, (k, p))), delta=jnp.asarray([1.5, 2.0, 1.2, 3.0]))
    out = jax.device_get(jax.jit(jax.vmap(lambda key: prior.sample(key, state, jnp.asarray(coef), jnp.asarray(tau))))(_keys()))
    global_prec = np.cumprod(np.asarray(state.delta))[:, None]
    z_m, z_v = z_uniform(gamma_pit(out.phi, (prior.nu + 1) / 2, (prior.nu + global_prec * tau * coef**2) / 2))
    assert np.all(np.abs(z_m) < Z_BOUND) and np.all(np.abs(z_v) < Z_BOUND)
    ordered_delta_checks(prior, np.asarray(state.delta), out.delta, out.phi, coef, tau)


def test_horseshoe_conditionals():
    prior = sj.priors.Horseshoe()
    rng = np.random.default_rng(7)
    k, p = 3, 5
    coef = rng.normal(size=(k, p)) * 0.5
    tau = rng.uniform(0.5, 2.0, p)
    state = sj.priors.Horseshoe().init(k, p)
    state = type(state)(lambda2=state.lambda2, xi=jnp.asarray(rng.uniform(0.5, 2, (k, p))), delta=jnp.asarray([1.5, 2.0, 1.2]))
    out = jax.device_get(jax.jit(jax.vmap(lambda key: prior.sample(key, state, jnp.asarray(coef), jnp.asarray(tau))))(_keys()))
    global_prec = np.cumprod(np.asarray(state.delta))[:, None]
    pit = inverse_gamma_pit(out.lambda2, 1.0, 1.0 / np.asarray(state.xi) + 0.5 * global_prec * tau * coef**2)
    z_m, z_v = z_uniform(pit)
    assert np.all(np.abs(z_m) < Z_BOUND) and np.all(np.abs(z_v) < Z_BOUND)
    z_m, z_v = z_uniform(inverse_gamma_pit(out.xi, 1.0, 1.0 + 1.0 / out.lambda2))
    assert np.all(np.abs(z_m) < Z_BOUND) and np.all(np.abs(z_v) < Z_BOUND)
    ordered_delta_checks(prior, np.asarray(state.delta), out.delta, 1.0 / out.lambda2, coef, tau)


def test_ard_conditionals():
    prior = sj.priors.ARD(nu=3.0, row_shape=2.0, row_rate=1.0)
    rng = np.random.default_rng(8)
    m, p = 3, 5
    coef = rng.normal(size=(m, p))
    tau = rng.uniform(0.5, 2.0, p)
    state = type(prior.init(m, p))(psi=jnp.ones((m, p)), row_prec=jnp.asarray([0.5, 1.0, 3.0]))
    out = jax.device_get(jax.jit(jax.vmap(lambda key: prior.sample(key, state, jnp.asarray(coef), jnp.asarray(tau))))(_keys()))
    scaled = coef**2 * tau
    z_m, z_v = z_uniform(gamma_pit(out.psi, (prior.nu + 1) / 2, (prior.nu + np.asarray(state.row_prec)[:, None] * scaled) / 2))
    assert np.all(np.abs(z_m) < Z_BOUND) and np.all(np.abs(z_v) < Z_BOUND)
    rate = prior.row_rate + 0.5 * np.sum(out.psi * scaled, axis=-1)
    z_m, z_v = z_uniform(gamma_pit(out.row_prec, prior.row_shape + p / 2, rate))
    assert np.all(np.abs(z_m) < Z_BOUND) and np.all(np.abs(z_v) < Z_BOUND)


def test_imputation():
    """Missing cells ~ N(fitted, (1 - h2)/tau); observed cells are kept exactly."""
    from slamjax.observation.gaussian import impute_missing

    rng = np.random.default_rng(9)
    n, p = 10, 3
    fitted = rng.normal(size=(n, p))
    var = np.array([0.5, 1.0, 2.0])
    Y = rng.normal(size=(n, p))
    observed = rng.random((n, p)) < 0.5
    out = np.asarray(jax.jit(jax.vmap(lambda key: impute_missing(
        key, jnp.asarray(fitted), jnp.asarray(var), jnp.asarray(Y), jnp.asarray(observed))))(_keys()))
    assert np.all(out[:, observed] == Y[observed])
    sd = np.broadcast_to(np.sqrt(var), (n, p))
    missing = ~observed
    assert np.all(np.abs(z_mean(out[:, missing], fitted[missing], sd[missing])) < Z_BOUND)
    assert np.all(np.abs(z_variance_normal(out[:, missing], sd[missing] ** 2)) < Z_BOUND)
