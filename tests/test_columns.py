"""``blocks/columns.py`` as a whole: one call draws (h2, beta, tau, U) of every column, and each must
follow its conditional given the others drawn in the same call, in the order the call draws them.

``collapsed=True``: h2_j | y marginal over beta, tau and U; then tau_j | h2_j (the one just drawn),
beta_j | tau_j, h2_j and U_j | beta_j, tau_j, h2_j. ``collapsed=False`` (MegaLMM's order): tau_j and
beta_j at the h2 the column starts at; then h2_j | beta_j, tau_j (marginal over U); then U_j.
Closed forms come from explicit n x n covariances in the original coordinates; the columns start
at grid points their posteriors rarely visit, so that a draw made at the wrong h2 shows.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

from slamjax.blocks import columns
from slamjax.state import B_precision

from _models import Q, collapsed_h2_log_density, covariance, prior_state, tiny_model
from _stats import Z_BOUND, gamma_pit, z_mean, z_uniform, z_variance_normal

N_DRAWS = 4000
START = np.array([4, 0, 4, 0])  # h2 = 0.8, 0, 0.8, 0


class _ClosedForms:
    """Everything the checks need at every grid point g, for every column j (original coordinates)."""

    def __init__(self, model, W, y, D):
        data = model.data
        Z, K = model.inputs.Z, model.inputs.K
        self.a = float(data.tau_shape) + 0.5 * (y.shape[0] - data.n_flat)
        self.b = float(data.tau_rate)
        self.h2 = np.asarray(data.h2_grid[:, 0])
        G, p = self.h2.size, y.shape[1]
        q = W.shape[1]
        self.V_inv = np.array([np.linalg.inv(covariance(model, h)) for h in self.h2])
        self.log_det_V = np.array([np.linalg.slogdet(covariance(model, h))[1] for h in self.h2])
        self.mean = np.empty((G, p, q))
        self.chol_C = np.empty((G, p, q, q))
        self.rate = np.empty((G, p))
        for g in range(G):
            for j in range(p):
                C = W.T @ self.V_inv[g] @ W + np.diag(D[:, j])
                rhs = W.T @ self.V_inv[g] @ y[:, j]
                self.mean[g, j] = np.linalg.solve(C, rhs)
                self.chol_C[g, j] = np.linalg.cholesky(C)
                self.rate[g, j] = self.b + 0.5 * (y[:, j] @ self.V_inv[g] @ y[:, j] - rhs @ self.mean[g, j])
        # U | resid, h2, tau ~ N(A resid, (tau P)^-1), P = Z'Z / (1 - h2) + K^-1 / h2, A = P^-1 Z' / (1 - h2)
        self.A = np.zeros((G, Z.shape[1], Z.shape[0]))
        self.chol_P = np.zeros((G, Z.shape[1], Z.shape[1]))
        for g in range(G):
            if self.h2[g] > 0:
                P = Z.T @ Z / (1 - self.h2[g]) + np.linalg.inv(K) / self.h2[g]
                self.A[g] = np.linalg.solve(P, Z.T / (1 - self.h2[g]))
                self.chol_P[g] = np.linalg.cholesky(P)
        self.collapsed_log_p = np.array([
            [collapsed_h2_log_density(model, W, y[:, j], D[:, j], float(data.tau_shape), self.b, h) for h in self.h2]
            for j in range(p)
        ])  # (p, G)

    def effects_z(self, U, resid, tau, h2_index):
        """z of mean and variance of U standardised at each draw's own (h2, tau, resid); U = 0 where h2 = 0."""
        assert np.all(U.transpose(0, 2, 1)[self.h2[h2_index] == 0] == 0.0)
        z = []
        for j in range(U.shape[-1]):
            standardised = []
            for g in np.unique(h2_index[:, j]):
                rows = (h2_index[:, j] == g) & (self.h2[g] > 0)
                if rows.sum() < 100:
                    continue
                centred = U[rows, :, j] - resid[rows, :, j] @ self.A[g].T
                standardised.append(np.sqrt(tau[rows, j])[:, None] * centred @ self.chol_P[g])
            if standardised:
                s = np.concatenate(standardised)
                z += [z_mean(s, 0.0, 1.0), z_variance_normal(s, 1.0)]
        return np.concatenate(z)

    def coefficients_z(self, coef, tau, h2_index):
        """z of beta standardised at each draw's (tau, h2): sqrt(tau) chol(C)' (beta - mean) ~ N(0, I)."""
        p = tau.shape[1]
        columns_ = np.arange(p)
        centred = coef.transpose(0, 2, 1) - self.mean[h2_index, columns_]  # (N, p, q)
        s = np.sqrt(tau)[:, :, None] * np.einsum("dpq,dpqr->dpr", centred, self.chol_C[h2_index, columns_])
        return np.concatenate([z_mean(s, 0.0, 1.0).ravel(), z_variance_normal(s, 1.0).ravel()])

    def tau_z(self, tau, h2_index):
        """z of the PIT of tau against Gamma(a + (n - n_flat) / 2, b + S / 2) at each draw's h2."""
        pit = gamma_pit(tau, self.a, self.rate[h2_index, np.arange(tau.shape[1])])
        return np.concatenate(z_uniform(pit))

    def h2_given_coefficients_z(self, h2_index, resid, tau, log_prior, key):
        """Randomised PIT of the h2 drawn given (beta, tau): P(g) propto prior_g N(resid; 0, V_g / tau)."""
        quadratic = np.einsum("dnp,gnm,dmp->dpg", resid, self.V_inv, resid)
        log_p = log_prior - 0.5 * self.log_det_V - 0.5 * tau[:, :, None] * quadratic
        prob = np.exp(log_p - scipy.special.logsumexp(log_p, axis=-1, keepdims=True))
        cdf = np.cumsum(prob, axis=-1)
        drawn = np.take_along_axis(prob, h2_index[:, :, None], -1)[..., 0]
        below = np.take_along_axis(cdf, h2_index[:, :, None], -1)[..., 0] - drawn
        pit = below + np.random.default_rng(key).random(drawn.shape) * drawn
        return np.concatenate(z_uniform(pit))

    def h2_frequencies_z(self, h2_index, log_prior):
        """z of the frequency of every grid point against P(h2 = g | y) marginal over beta, tau and U."""
        log_p = self.collapsed_log_p + log_prior
        prob = np.exp(log_p - scipy.special.logsumexp(log_p, axis=1, keepdims=True))  # (p, G)
        freq = np.stack([np.bincount(h2_index[:, j], minlength=prob.shape[1]) for j in range(prob.shape[0])])
        freq = freq / h2_index.shape[0]
        return ((freq - prob) / np.sqrt(np.maximum(prob * (1 - prob), 1e-12) / h2_index.shape[0])).ravel()


def columns_z(backend: str, collapsed: bool, n_draws: int = N_DRAWS, seed: int = 0) -> np.ndarray:
    """z-scores of every check of one ``sample_columns`` call (the trait columns of a tiny model with
    the default flat intercept), over ``n_draws`` independent calls."""
    model = tiny_model(backend=backend, intercept_precision=0.0)
    data = model.data
    state = prior_state(tiny_model(backend=backend, intercept_precision=0.5), seed=seed + 1)  # proper: drawable
    p, n = model.shapes["p"], model.shapes["n"]
    Qm = Q(model)
    W_rot = jnp.concatenate([data.X, state.F], axis=1)
    D = np.concatenate([np.asarray(B_precision(data, state.B_prior, p)),
                        np.asarray(data.Lambda_prior.precision(state.Lambda_prior))])
    draw = jax.jit(jax.vmap(lambda key: columns.sample_columns(  # looked up now: patchable
        key, data.re, state.Eta, W_rot, jnp.asarray(START, jnp.int32), jnp.asarray(D), data.tau_shape,
        data.tau_rate, n, data.n_flat, data.trait_log_prior, collapsed)))
    coef, tau, h2_index, U, ok = jax.device_get(draw(jax.random.split(jax.random.key(seed), n_draws)))
    assert ok.all()
    h2_index = np.asarray(h2_index, dtype=int)
    W, y = Qm @ np.asarray(W_rot), Qm @ np.asarray(state.Eta)
    closed = _ClosedForms(model, W, y, D)
    resid = y[None] - np.einsum("nq,dqp->dnp", W, coef)  # (N, n, p)
    U_levels = np.asarray(jax.vmap(model.random_effect.to_levels)(jnp.asarray(U)))
    log_prior = np.asarray(data.trait_log_prior)
    start = np.broadcast_to(START, h2_index.shape)
    coefficient_index = h2_index if collapsed else start
    z = [closed.tau_z(tau, coefficient_index), closed.coefficients_z(coef, tau, coefficient_index),
         closed.effects_z(U_levels, resid, tau, h2_index)]
    if collapsed:
        z.append(closed.h2_frequencies_z(h2_index, log_prior))
    else:
        z.append(closed.h2_given_coefficients_z(h2_index, resid, tau, log_prior, seed))
    return np.concatenate(z)


@pytest.mark.parametrize("backend", ["eigen", "cholesky"])
@pytest.mark.parametrize("collapsed", [True, False], ids=["collapsed", "conditional"])
def test_columns_draw_follows_its_conditionals(backend, collapsed):
    z = columns_z(backend, collapsed)
    assert np.all(np.abs(z) < Z_BOUND), (np.argmax(np.abs(z)), np.max(np.abs(z)))
