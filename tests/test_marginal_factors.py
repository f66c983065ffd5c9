"""Step 5m (``blocks/marginal_factors.py``) against its closed form, by brute force in the original
coordinates: two factors with loadings on nearly the same traits, drawn in turn
(h2_F1, F_1, h2_F2, F_2), traits at three different h2. Each piece of the sequence is checked
against the dense n p x n p marginal (F_l, U_F and U_R integrated out) or the dense n x n Gaussian
conditional of F_l, given the draws before it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.special
import scipy.stats

import slamjax as sj
import slamjax.blocks.marginal_factors as marginal_factors  # looked up at call time (planted bugs patch it)

from _models import Q, covariance, tiny_model
from _stats import Z_BOUND, z_mean, z_variance_normal

N_DRAWS = 40_000
H2_WEIGHTS = np.array([1.0, 2.0, 0.7])  # prior weights of the 3 grid points (h2 = 0, 1/3, 2/3)


def _problem(seed: int = 7, n: int = 10, p: int = 3):
    """A tiny eigen model with two factors and the step's inputs, in original coordinates."""
    model = tiny_model(n=n, p=p, k=2, h2_divisions=3, priors=sj.Priors(F_h2=H2_WEIGHTS))
    rng = np.random.default_rng(seed)
    Lambda = rng.normal(size=(2, p)) * 1.2
    Lambda[1] = Lambda[0] + 0.4 * Lambda[1]  # both factors on nearly the same traits: F_2's
    # conditional depends strongly on the F_1 just drawn
    return model, dict(
        Lambda=Lambda,
        tau=rng.uniform(0.8, 2.5, p),  # the traits' total precisions
        trait_index=np.arange(p) % 3,  # and grid points: h2 = 0, 1/3, 2/3 (U_R integrated out)
        tau_F=rng.uniform(0.6, 1.8, 2),
        resid=rng.normal(size=(n, p)) * 1.5,  # Eta - X B - Z U_R
        m=rng.normal(size=(n, 2)) * 0.5,  # X_F B_F
        F=rng.normal(size=(n, 2)),  # the scores before the step
        start=np.array([2, 0]),
    )


def _draws(model, inputs, seed: int):
    """(F (draws, n, 2) in original coordinates, h2 indices (draws, 2)) of the step."""
    Qm = jnp.asarray(Q(model))
    rotated = {name: Qm.T @ inputs[name] for name in ("resid", "F", "m")}
    draw = jax.jit(jax.vmap(lambda key: marginal_factors.sample_factors_marginal(
        key, model.data.re.variances(), rotated["resid"], jnp.asarray(inputs["Lambda"]), jnp.asarray(inputs["tau"]),
        jnp.asarray(inputs["trait_index"], jnp.int32), rotated["F"], rotated["m"], jnp.asarray(inputs["tau_F"]), jnp.asarray(inputs["start"], jnp.int32),
        model.data.factor_log_prior)))
    F, indices, ok = jax.device_get(draw(jax.random.split(jax.random.key(seed), N_DRAWS)))
    assert ok.all()
    return np.einsum("ij,djk->dik", np.asarray(Qm), F), indices


def _trait_covariances(model, inputs) -> list[np.ndarray]:
    """Each trait's n x n residual covariance marginal over U_R: V(h2_j) / tau_j."""
    grid = np.asarray(model.data.h2_grid[:, 0])
    return [covariance(model, grid[g]) / t for g, t in zip(inputs["trait_index"], inputs["tau"])]


def _log_marginal(model, inputs, l: int, r_star: np.ndarray) -> np.ndarray:
    """log p(r*_d | h2_Fl = grid[g]) + log prior_g for every draw d and grid point g, with
    r* = lambda_l x + E, x ~ N(0, V_g / tau_Fl) (rows of ``r_star``: vec of the n x p residual)."""
    grid = np.asarray(model.data.h2_grid[:, 0])
    lam = inputs["Lambda"][l]
    out = []
    for h2 in grid:
        cov = scipy.linalg.block_diag(*_trait_covariances(model, inputs)) + np.kron(
            np.outer(lam, lam), covariance(model, h2) / inputs["tau_F"][l])
        sign, logdet = np.linalg.slogdet(cov)
        out.append(-0.5 * logdet - 0.5 * np.einsum("da,ab,db->d", r_star, np.linalg.inv(cov), r_star))
    return np.stack(out, axis=1) + np.log(H2_WEIGHTS / H2_WEIGHTS.sum())[None, :]


def _vec(x: np.ndarray) -> np.ndarray:
    """vec of n x p residuals (draws, n, p) stacked trait after trait."""
    return np.swapaxes(x, -1, -2).reshape(x.shape[0], -1)


def _scores_z(model, inputs, l: int, r_star: np.ndarray, g: np.ndarray, F_l: np.ndarray) -> np.ndarray:
    """z of the mean and variance of F_l's draws standardised by their dense conditional
    F_l | r*, h2_Fl ~ N(P^-1 (tau V^-1 m_l + sum_j lambda_j R_j^-1 r*_j), P^-1),
    P = tau V^-1 + sum_j lambda_j^2 R_j^-1 (R_j: trait j's covariance marginal over U_R)."""
    grid = np.asarray(model.data.h2_grid[:, 0])
    lam, tau = inputs["Lambda"][l], inputs["tau_F"][l]
    R_inv = [np.linalg.inv(R) for R in _trait_covariances(model, inputs)]
    standardised = np.empty_like(F_l)
    for index, h2 in enumerate(grid):
        rows = g == index
        V_inv = np.linalg.inv(covariance(model, h2))
        cov = np.linalg.inv(tau * V_inv + sum(lam[j] ** 2 * R_inv[j] for j in range(len(lam))))
        rhs = tau * V_inv @ inputs["m"][:, l] + sum(lam[j] * r_star[rows][:, :, j] @ R_inv[j] for j in range(len(lam)))
        mean = rhs @ cov
        standardised[rows] = (F_l[rows] - mean) / np.sqrt(np.diag(cov))[None, :]
    return np.concatenate([z_mean(standardised, 0.0, 1.0), z_variance_normal(standardised, 1.0)])


def _index_z(probabilities: np.ndarray, g: np.ndarray) -> np.ndarray:
    """z of mean(1{g = a} - P_d(a)) for every grid point a: the draws' indices against the
    per-draw probabilities P_d of their exact conditional."""
    indicator = g[:, None] == np.arange(probabilities.shape[1])[None, :]
    difference = (indicator - probabilities).mean(axis=0)
    se = np.sqrt(np.sum(probabilities * (1.0 - probabilities), axis=0)) / probabilities.shape[0]
    return difference / se


def marginal_factors_z(seed: int = 0) -> np.ndarray:
    """Every z of the sequence check (module docstring): h2_F1, F_1 | h2_F1, h2_F2 | F_1, F_2 | h2_F2, F_1."""
    model, inputs = _problem()
    F, g = _draws(model, inputs, seed)
    Lambda, resid, m = inputs["Lambda"], inputs["resid"], inputs["m"]
    z = []
    # factor 1 given the starting F_2: r* = resid - F_2 lambda_2' - m_1 lambda_1'
    r1 = resid - np.outer(inputs["F"][:, 1], Lambda[1]) - np.outer(m[:, 0], Lambda[0])
    log_p = _log_marginal(model, inputs, 0, _vec(r1[None]))[0]
    z.append(_index_z(np.broadcast_to(np.exp(log_p - scipy.special.logsumexp(log_p)), (N_DRAWS, 3)), g[:, 0]))
    z.append(_scores_z(model, inputs, 0, np.broadcast_to(resid - np.outer(inputs["F"][:, 1], Lambda[1]), (N_DRAWS,) + resid.shape),
                       g[:, 0], F[:, :, 0]))
    # factor 2 given the F_1 just drawn
    r2 = resid[None] - F[:, :, :1] * Lambda[0][None, None, :]
    log_p = _log_marginal(model, inputs, 1, _vec(r2 - np.outer(m[:, 1], Lambda[1])[None]))
    z.append(_index_z(np.exp(log_p - scipy.special.logsumexp(log_p, axis=1, keepdims=True)), g[:, 1]))
    z.append(_scores_z(model, inputs, 1, r2, g[:, 1], F[:, :, 1]))
    return np.concatenate(z)


def test_marginal_factor_draws_match_their_closed_forms():
    z = marginal_factors_z()
    assert np.all(np.abs(z) < Z_BOUND), z


def intercept_shift_z(seed: int = 0) -> np.ndarray:
    """z of the mean and variance of the shift t of step 5l (F + 1 t', B_0 - t' Lambda, k = 2) against
    the dense Gaussian conditional in original coordinates: precision diag(tau_l 1' V_l^-1 1) +
    Lambda W Lambda', linear term -tau_l 1' V_l^-1 (f_l - m_l) + Lambda W B_0 (W: B_0's prior precision)."""
    model, inputs = _problem(seed=3)
    rng = np.random.default_rng(4)
    Lambda, tau_F, m, F = inputs["Lambda"], inputs["tau_F"], inputs["m"], inputs["F"] + 2.0
    n, p = inputs["resid"].shape
    B0, w = rng.normal(size=p), rng.uniform(0.5, 3.0, p)
    h2_index = np.array([2, 1])
    grid = np.asarray(model.data.h2_grid[:, 0])
    ones = np.ones(n)
    V_inv = [np.linalg.inv(covariance(model, grid[g]) / tau_F[l]) for l, g in enumerate(h2_index)]
    precision = np.diag([ones @ V @ ones for V in V_inv]) + (Lambda * w) @ Lambda.T
    rhs = np.array([-ones @ V @ (F[:, l] - m[:, l]) for l, V in enumerate(V_inv)]) + (Lambda * w) @ B0
    cov = np.linalg.inv(precision)
    mean = cov @ rhs

    Qm = Q(model)
    x = Qm.T @ ones
    np.testing.assert_allclose(np.asarray(model.data.X[:, 0]), x, atol=1e-10)  # the rotated intercept column
    draw = jax.jit(jax.vmap(lambda key: marginal_factors.sample_intercept_shift(
        key, jnp.asarray(x), model.data.re.variances(), jnp.asarray(Qm.T @ F), jnp.asarray(Qm.T @ m),
        jnp.asarray(tau_F), jnp.asarray(h2_index, jnp.int32), jnp.asarray(Lambda), jnp.asarray(B0), jnp.asarray(w))))
    F_new, B0_new, ok = jax.device_get(draw(jax.random.split(jax.random.key(seed), 4000)))
    assert ok.all()
    t = np.einsum("dik,i->dk", F_new - (Qm.T @ F)[None], x) / (x @ x)
    np.testing.assert_allclose(F_new, (Qm.T @ F)[None] + x[None, :, None] * t[:, None, :], atol=1e-10)
    np.testing.assert_allclose(B0_new, B0[None] - t @ Lambda, atol=1e-10)  # the fit X B + F Lambda is unchanged
    sd = np.sqrt(np.diag(cov))
    return np.concatenate([z_mean(t, mean, sd), z_variance_normal(t, sd**2)])


def test_intercept_shift_matches_its_closed_form():
    z = intercept_shift_z()
    assert np.all(np.abs(z) < Z_BOUND), z
