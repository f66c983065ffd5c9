"""Step 0, the factors' rotation: the exact conditional of the angle, and invariance of F Lambda."""

from __future__ import annotations

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from slamjax.blocks.rotation import round_robin, sample_factor_rotation

from _models import Q, covariance, prior_state, tiny_model
from _stats import Z_BOUND, z_uniform

N_DRAWS = 4000


def _arguments(model, state):
    data = model.data
    return dict(
        re=data.re, F=state.F, X_F=data.X_F, B_F=state.B_F, Lambda=state.Lambda, F_h2_index=state.F_h2_index,
        tau_F=state.tot_F_prec, B_F_precision=data.B_F_prior.precision(state.B_F_prior),
        Lambda_precision=data.Lambda_prior.precision(state.Lambda_prior), tau=state.tot_Eta_prec,
    )


def _log_density(model, state, theta):
    """The explicit log density (original coordinates, full n x n V) of (F R, B_F R, R' Lambda), k = 2."""
    data = model.data
    c, s = np.cos(theta), np.sin(theta)
    R = np.array([[c, -s], [s, c]])
    Qm = Q(model)
    F = Qm @ np.asarray(state.F) @ R
    B_F = np.asarray(state.B_F) @ R
    Lambda = R.T @ np.asarray(state.Lambda)
    E = F - Qm @ np.asarray(data.X_F) @ B_F
    tau_F, tau = np.asarray(state.tot_F_prec), np.asarray(state.tot_Eta_prec)
    B_precision = np.asarray(data.B_F_prior.precision(state.B_F_prior))
    Lambda_precision = np.asarray(data.Lambda_prior.precision(state.Lambda_prior))
    total = 0.0
    for m in range(2):
        V = covariance(model, float(data.h2_grid[int(state.F_h2_index[m]), 0]))
        total -= 0.5 * tau_F[m] * E[:, m] @ np.linalg.solve(V, E[:, m])
        total -= 0.5 * tau_F[m] * np.sum(B_precision[:, m] * B_F[:, m] ** 2)
        total -= 0.5 * np.sum(tau * Lambda_precision[m] * Lambda[m] ** 2)
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
    log_density = np.array([_log_density(model, state, t) for t in grid])
    density = np.exp(log_density - log_density.max())
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(grid))])
    cdf /= cdf[-1]
    z_m, z_v = z_uniform(np.interp(theta, grid, cdf))
    assert abs(z_m) < Z_BOUND and abs(z_v) < Z_BOUND, (z_m, z_v)
    assert scipy.stats.kstest(np.interp(theta, grid, cdf), "uniform").pvalue > 1e-4


@pytest.mark.parametrize("k", [2, 3, 4, 5, 10])
def test_round_robin_visits_every_pair_once_in_disjoint_rounds(k):
    rounds = round_robin(k)
    pairs = [tuple(pair) for one_round in rounds for pair in one_round if pair[1] < k]
    assert sorted(pairs) == list(itertools.combinations(range(k), 2))
    for one_round in rounds:
        assert len(set(one_round.ravel())) == one_round.size


@pytest.mark.parametrize("backend", ["eigen", "cholesky"])
@pytest.mark.parametrize("k", [3, 4])
def test_rotation_leaves_the_data_fit_unchanged(backend, k):
    """F Lambda and F - X_F B_F rotate together: F' Lambda' = F Lambda, E' = E R with R orthogonal."""
    model = tiny_model(k=k, p=6, backend=backend)
    state = prior_state(model)
    F, B_F, Lambda = sample_factor_rotation(jax.random.key(3), **_arguments(model, state))
    np.testing.assert_allclose(np.asarray(F @ Lambda), np.asarray(state.F @ state.Lambda), atol=1e-10)
    R = np.linalg.lstsq(np.asarray(state.F), np.asarray(F), rcond=None)[0]
    np.testing.assert_allclose(R.T @ R, np.eye(k), atol=1e-10)
    np.testing.assert_allclose(np.asarray(B_F), np.asarray(state.B_F) @ R, atol=1e-10)
    assert not np.allclose(R, np.eye(k), atol=1e-3)
