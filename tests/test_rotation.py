"""Step 0, the factors' rotation: the exact conditional of the angle, and invariance of F Lambda."""

from __future__ import annotations

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from slamjax.blocks import rotation
from slamjax.blocks.rotation import round_robin, sample_factor_rotation

from _models import Q, covariance, prior_state, tiny_model
from _stats import Z_BOUND, z_mean, z_uniform

N_DRAWS = 4000


def _arguments(model, state):
    data = model.data
    return dict(
        re=data.re, F=state.F, X_F=data.X_F, B_F=state.B_F, Lambda=state.Lambda, F_h2_index=state.F_h2_index,
        tau_F=state.tot_F_prec, B_F_precision=data.B_F_prior.precision(state.B_F_prior),
        Lambda_precision=data.Lambda_prior.precision(state.Lambda_prior), tau=state.tot_Eta_prec,
    )


def _log_density(model, state, theta):
    """The explicit log density (original coordinates, full n x n V) of (F R, B_F R, R' Lambda), k = 2,
    at angles ``theta`` (an array)."""
    c, s = np.cos(theta), np.sin(theta)
    return _log_density_of(model, state, np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2))


def _log_density_of(model, state, R):
    """The explicit log density of (F R, B_F R, R^-1 Lambda) for invertible 2 x 2 matrices R (..., 2, 2):
    with E = F - X_F B_F, column m of (E R, B_F R) is (E, B_F) R[:, m], so its prior terms are
    R[:, m]' (tau_Fm E' V_m^-1 E + tau_Fm B_F' diag(D_m) B_F) R[:, m]."""
    data = model.data
    Qm = Q(model)
    B_F = np.asarray(state.B_F)
    E = Qm @ np.asarray(state.F) - Qm @ np.asarray(data.X_F) @ B_F
    tau_F, tau = np.asarray(state.tot_F_prec), np.asarray(state.tot_Eta_prec)
    B_precision = np.asarray(data.B_F_prior.precision(state.B_F_prior))
    Lambda_precision = np.asarray(data.Lambda_prior.precision(state.Lambda_prior))
    R = np.asarray(R, dtype=float)
    Lambda = np.linalg.solve(R, np.broadcast_to(np.asarray(state.Lambda), (*R.shape[:-2], *state.Lambda.shape)))
    total = 0.0
    for m in range(2):
        V = covariance(model, float(data.h2_grid[int(state.F_h2_index[m]), 0]))
        A = tau_F[m] * (E.T @ np.linalg.solve(V, E) + B_F.T @ (B_precision[:, m : m + 1] * B_F))
        total = total - 0.5 * np.einsum("...i,ij,...j->...", R[..., :, m], A, R[..., :, m])
        total = total - 0.5 * np.sum(tau * Lambda_precision[m] * Lambda[..., m, :] ** 2, axis=-1)
    return total


@pytest.mark.parametrize("backend", ["eigen", "cholesky"])
@pytest.mark.parametrize("seed", [1, 2])
def test_rotation_angle_follows_its_conditional(backend, seed):
    """Angles of N_DRAWS rotations of one state, by PIT against the density computed on a fine grid."""
    model = tiny_model(backend=backend)
    state = prior_state(model, seed=seed)
    state = eqx.tree_at(lambda s: s.F_h2_index, state, jnp.array([1, 3], dtype=jnp.int32))  # unequal h2_F
    arguments = _arguments(model, state)
    draw = jax.jit(jax.vmap(lambda key: sample_factor_rotation(key, **arguments)[0]))
    F_new = np.asarray(draw(jax.random.split(jax.random.key(seed), N_DRAWS)))
    R = np.linalg.lstsq(np.asarray(state.F), F_new.transpose(1, 0, 2).reshape(state.F.shape[0], -1), rcond=None)[0]
    R = R.reshape(2, N_DRAWS, 2).transpose(1, 0, 2)
    np.testing.assert_allclose(np.einsum("dab,dbc->dac", R.transpose(0, 2, 1), R), np.broadcast_to(np.eye(2), R.shape),
                               atol=1e-8)
    theta = np.arctan2(R[:, 1, 0], R[:, 0, 0]) % (2 * np.pi)
    grid = np.linspace(0.0, 2 * np.pi, 4001)
    log_density = _log_density(model, state, grid)
    density = np.exp(log_density - log_density.max())
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(grid))])
    cdf /= cdf[-1]
    z_m, z_v = z_uniform(np.interp(theta, grid, cdf))
    assert abs(z_m) < Z_BOUND and abs(z_v) < Z_BOUND, (z_m, z_v)
    assert scipy.stats.kstest(np.interp(theta, grid, cdf), "uniform").pvalue > 1e-4


def _gaussian_of(log_density):
    """Mean and sd of a density whose log is quadratic, from its values at -1, 0 and 1."""
    below, centre, above = (log_density(s) for s in (-1.0, 0.0, 1.0))
    curvature, slope = 0.5 * (above + below) - centre, 0.5 * (above - below)
    return -slope / (2.0 * curvature), np.sqrt(-0.5 / curvature)


def shear_z(backend: str = "eigen", seed: int = 1, n_draws: int = N_DRAWS) -> np.ndarray:
    """z-scores of the two shears of k = 2 factors against their closed forms.

    The angle is fixed at 0 (``von_mises`` replaced; the flip theta = pi, which the step still
    draws, changes no shear's conditional), so the step returns T = +-S1(s1) S2(s2) with
    S1(s) = [[1, 0], [s, 1]] (F_1 + s F_2) and S2(s) = [[1, s], [0, 1]] (F_2 + s F_1). The log
    density of (F T, B_F T, T^-1 Lambda) in original coordinates, with the full n x n V, is
    quadratic in each shear: three points give the conditional of s1 and, draw by draw, of s2
    given s1. Standardised, both are N(0, 1): the z-scores of their means and variances."""
    model = tiny_model(backend=backend)
    state = prior_state(model, seed=seed)
    state = eqx.tree_at(lambda s: s.F_h2_index, state, jnp.array([1, 3], dtype=jnp.int32))  # unequal h2_F
    arguments = _arguments(model, state)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rotation, "von_mises", lambda key, mu, kappa: jnp.zeros_like(mu))
        draw = jax.jit(jax.vmap(lambda key: rotation.sample_factor_rotation(key, **arguments, shear=True)[3]))
        T = np.asarray(draw(jax.random.split(jax.random.key(seed), n_draws)))
    s1, s2 = T[:, 1, 0] / T[:, 0, 0], T[:, 0, 1] / T[:, 0, 0]
    def S1(s):  # (..., 2, 2)
        s = np.asarray(s, dtype=float)
        return np.stack([np.stack([np.ones_like(s), np.zeros_like(s)], -1), np.stack([s, np.ones_like(s)], -1)], -2)

    def S2(s):
        return np.swapaxes(S1(s), -1, -2)

    np.testing.assert_allclose(T / T[:, :1, :1], S1(s1) @ S2(s2), atol=1e-9)
    mean1, sd1 = _gaussian_of(lambda s: _log_density_of(model, state, S1(s)))
    mean2, sd2 = _gaussian_of(lambda s: _log_density_of(model, state, S1(s1) @ S2(np.full(n_draws, s))))
    z1, z2 = (s1 - mean1) / sd1, (s2 - mean2) / sd2
    return np.array([z_mean(z1, 0.0, 1.0), z_mean(z1**2, 1.0, np.sqrt(2.0)),
                     z_mean(z2, 0.0, 1.0), z_mean(z2**2, 1.0, np.sqrt(2.0))])


@pytest.mark.parametrize("backend", ["eigen", "cholesky"])
@pytest.mark.parametrize("seed", [1, 2])
def test_shears_follow_their_conditionals(backend, seed):
    z = shear_z(backend, seed)
    assert np.all(np.abs(z) < Z_BOUND), z


@pytest.mark.parametrize("k", [2, 3, 4, 5, 10])
def test_round_robin_visits_every_pair_once_in_disjoint_rounds(k):
    rounds = round_robin(k)
    pairs = [tuple(pair) for one_round in rounds for pair in one_round if pair[1] < k]
    assert sorted(pairs) == list(itertools.combinations(range(k), 2))
    for one_round in rounds:
        assert len(set(one_round.ravel())) == one_round.size


@pytest.mark.parametrize("backend", ["eigen", "cholesky"])
@pytest.mark.parametrize("k", [3, 4])
@pytest.mark.parametrize("shear", [False, True])
def test_rotation_leaves_the_data_fit_unchanged(backend, k, shear):
    """F Lambda and F - X_F B_F transform together: F' Lambda' = F Lambda, F' = F R, B_F' = B_F R and
    Lambda' = R^-1 Lambda, R orthogonal without shears, and R is the matrix returned (the one the
    sweep applies to the markers' fitted part)."""
    model = tiny_model(k=k, p=6, backend=backend)
    state = prior_state(model)
    F, B_F, Lambda, T = sample_factor_rotation(jax.random.key(3), **_arguments(model, state), shear=shear)
    np.testing.assert_allclose(np.asarray(F @ Lambda), np.asarray(state.F @ state.Lambda), atol=1e-10)
    R = np.linalg.lstsq(np.asarray(state.F), np.asarray(F), rcond=None)[0]
    np.testing.assert_allclose(np.asarray(T), R, atol=1e-10)
    np.testing.assert_allclose(np.asarray(B_F), np.asarray(state.B_F) @ R, atol=1e-10)
    np.testing.assert_allclose(np.asarray(Lambda), np.linalg.solve(R, np.asarray(state.Lambda)), atol=1e-9)
    orthogonal = np.allclose(R.T @ R, np.eye(k), atol=1e-10)
    assert orthogonal != shear
    assert not np.allclose(R, np.eye(k), atol=1e-3)


def _prior_draws_of_factor_terms(model, hyper, n_draws, seed):
    """n_draws independent (F, B_F, Lambda) from their prior given fixed hyperparameters, marginal
    over U_F, drawn in the original coordinates from the explicit covariances:
    B_F[:, m] ~ N(0, diag(1 / (tau_F_m D_m))), F[:, m] = X_F B_F[:, m] + E_m, E_m ~ N(0, V_m / tau_F_m),
    Lambda[m, j] ~ N(0, 1 / (tau_j P_mj))."""
    data = model.data
    rng = np.random.default_rng(seed)
    Qm = Q(model)
    X_F = Qm @ np.asarray(data.X_F)
    n, b_F = X_F.shape
    k, p = hyper["Lambda_precision"].shape
    tau_F, tau = hyper["tau_F"], hyper["tau"]
    B_F = rng.normal(size=(n_draws, b_F, k)) / np.sqrt(tau_F * hyper["B_F_precision"])
    E = np.empty((n_draws, n, k))
    for m in range(k):
        V = covariance(model, float(data.h2_grid[hyper["F_h2_index"][m], 0]))
        E[:, :, m] = rng.normal(size=(n_draws, n)) @ np.linalg.cholesky(V).T / np.sqrt(tau_F[m])
    F = X_F @ B_F + E
    Lambda = rng.normal(size=(n_draws, k, p)) / np.sqrt(tau * hyper["Lambda_precision"])
    return F, B_F, Lambda


def _unequal_hyperparameters(model, k, seed):
    """Factor hyperparameters that differ between factors in every term of the angle's conditional,
    by fixed ratios (the seed only permutes them and adds +-25 % noise): tau_F spread over a factor
    of 16, different grid points of h2_F, Lambda precisions growing with the factor (as the MGPS
    prior's) over a factor of 32, B_F precisions spread over a factor of 100."""
    rng = np.random.default_rng(seed)
    p, b_F = model.shapes["p"], model.shapes["b_F"]
    G = model.data.h2_grid.shape[0]
    noise = lambda shape: rng.uniform(0.8, 1.25, shape)  # noqa: E731
    return dict(
        tau_F=np.geomspace(0.25, 4.0, k)[rng.permutation(k)],
        F_h2_index=np.array([0, G - 1, 2, 1, 3, G - 2][:k]) % G,
        Lambda_precision=np.geomspace(0.25, 8.0, k)[:, None] * noise((k, p)),
        B_F_precision=np.geomspace(0.1, 10.0, k)[rng.permutation(k)][None, :] * noise((b_F, k)),
        tau=rng.uniform(0.5, 2.0, p),
    )


def rotation_position_z(k: int, backend: str = "eigen", n_draws: int = 20_000, seed: int = 0, shear: bool = False):
    """z-scores of the expectations one rotation step (with shears: ``shear``) must leave unchanged,
    position by position.

    The step is a generalised Gibbs step: applied to draws from the prior of (F, B_F, Lambda)
    given the hyperparameters (marginal over U_F, which the step integrates out), it must return
    draws from the same prior. So, after one step, with E = F - X_F B_F (original coordinates):
    tau_F_m D_im B_F_im^2, tau_j P_mj Lambda_mj^2 and F_im^2 / Var(F_im) have mean 1 and variance 2
    (chi-square, 1 df), tau_F_m E_m' V_m^-1 E_m / n mean 1 and variance 2 / n, and the products of
    two factors' standardised values (B_F, Lambda, E whitened by each factor's V) mean 0 and
    variance 1. A wrong target mixes factors with different hyperparameters and shifts them.
    """
    model = tiny_model(k=k, p=5, n=24, backend=backend)
    data = model.data
    hyper = _unequal_hyperparameters(model, k, seed)
    F, B_F, Lambda = _prior_draws_of_factor_terms(model, hyper, n_draws, seed + 100)
    Qm = Q(model)
    rotate = jax.jit(jax.vmap(lambda key, F, B_F, Lambda: rotation.sample_factor_rotation(  # looked up now: patchable
        key, data.re, F, data.X_F, B_F, Lambda, jnp.asarray(hyper["F_h2_index"], jnp.int32),
        jnp.asarray(hyper["tau_F"]), jnp.asarray(hyper["B_F_precision"]), jnp.asarray(hyper["Lambda_precision"]),
        jnp.asarray(hyper["tau"]), shear=shear)))
    F, B_F, Lambda, _ = jax.device_get(rotate(jax.random.split(jax.random.key(seed), n_draws),
                                           jnp.asarray(Qm.T @ F), jnp.asarray(B_F), jnp.asarray(Lambda)))
    F = Qm @ F
    X_F = Qm @ np.asarray(data.X_F)
    n = F.shape[1]
    tau_F, tau = hyper["tau_F"], hyper["tau"]
    E = F - X_F @ B_F
    B_std = B_F * np.sqrt(tau_F * hyper["B_F_precision"])  # (N, b_F, k)
    Lambda_std = Lambda * np.sqrt(tau * hyper["Lambda_precision"])  # (N, k, p)
    E_white = np.empty_like(E)
    F_sd = np.empty((n, k))
    for m in range(k):
        V = covariance(model, float(data.h2_grid[hyper["F_h2_index"][m], 0]))
        E_white[:, :, m] = E[:, :, m] @ np.linalg.inv(np.linalg.cholesky(V)).T * np.sqrt(tau_F[m])
        F_sd[:, m] = np.sqrt(X_F**2 @ (1.0 / (tau_F[m] * hyper["B_F_precision"][:, m])) + np.diag(V) / tau_F[m])
    squares = [B_std**2, Lambda_std**2, (F / F_sd) ** 2]
    z = [z_mean(s.reshape(n_draws, -1), 1.0, np.sqrt(2.0)) for s in squares]
    z.append(z_mean(np.sum(E_white**2, axis=1) / n, 1.0, np.sqrt(2.0 / n)))
    a, b = np.triu_indices(k, 1)
    products = [B_std[:, :, a] * B_std[:, :, b], Lambda_std[:, a] * Lambda_std[:, b],
                np.sum(E_white[:, :, a] * E_white[:, :, b], axis=1) / np.sqrt(n)]
    z += [z_mean(s.reshape(n_draws, -1), 0.0, 1.0) for s in products]
    return np.concatenate(z)


@pytest.mark.parametrize("backend", ["eigen", "cholesky"])
@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_rotation_keeps_the_prior_of_every_position(k, backend):
    z = rotation_position_z(k, backend)
    assert np.all(np.abs(z) < Z_BOUND), (np.argmax(np.abs(z)), np.max(np.abs(z)))


@pytest.mark.parametrize("backend", ["eigen", "cholesky"])
@pytest.mark.parametrize("k", [2, 3, 5])
def test_rotation_with_shears_keeps_the_prior_of_every_position(k, backend):
    z = rotation_position_z(k, backend, shear=True)
    assert np.all(np.abs(z) < Z_BOUND), (np.argmax(np.abs(z)), np.max(np.abs(z)))
