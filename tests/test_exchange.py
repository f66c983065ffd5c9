"""Step 0e (``blocks/exchange.py``) against its closed form, by brute force in the original
coordinates. One factor (k = 1), three traits at three different h2: the move alone, applied again
and again, is a Markov chain on the orbit {g_c x0 : c > 0} of its starting point (F_l is integrated
out of every move), whose stationary density in t = log c is

    pi(g_{e^t} x0) J_{e^t}(x0),  J_c = c^p prod_j (tau_j(c) / tau_j)^2,

with pi the dense n p-dimensional Gaussian of vec(Eta - X B) (F_l, U_F and U_R integrated out)
times the priors of tau and of the coefficients. The chain's frequencies in 8 bins, equiprobable
under that density, are compared with 1/8 (standard errors by batch means); and each move's draw of
F_l, standardised by its dense n x n conditional given the move's (Lambda, tau), must be N(0, 1).

The second move (loadings against their shrinkage scale, ``shrinkage_z``) is checked the same way
on its own orbit, t -> (lambda0 e^t, delta0 e^-2t) with tau fixed, whose density is the dense
likelihood times the loadings' normal prior N(0, 1 / (tau_j phi_j delta)), delta's Gamma prior and
the Jacobian e^(p t - 2 t). With one factor this is the last factor's branch; the branch that
compensates with the next row's delta is covered by the Geweke tests (every tiny eigen model has
step 0e and three factors)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

import slamjax.blocks.exchange as exchange  # looked up at call time (planted bugs patch it)

from _models import Q, covariance, tiny_model
from _stats import Z_BOUND, batch_means_se, z_mean, z_variance_normal

N_MOVES = 40_000
N_BINS = 8
TAU_SHAPE, TAU_RATE, N_TAU_COEFFICIENTS = 2.0, 1.0, 3
DELTA0, DELTA_SHAPE, DELTA_RATE = 1.7, 2.0, 1.0  # the shrinkage move's delta_1 and its Gamma prior


def _problem(seed: int = 5, n: int = 10, p: int = 3):
    """A tiny eigen model (grid h2 = 0, 1/3, 2/3) and the move's inputs in original coordinates."""
    model = tiny_model(n=n, p=p, k=1, h2_divisions=3)
    rng = np.random.default_rng(seed)
    Lambda = rng.normal(size=(1, p)) * 0.8
    Lambda[0, 0] = 1.2  # a factor that loads mainly on trait 0
    return model, dict(
        Lambda=Lambda,
        tau=rng.uniform(0.8, 2.5, p),
        trait_index=np.arange(p) % 3,
        resid=rng.normal(size=(n, p)) * 1.3 + np.outer(rng.normal(size=n), Lambda[0]),  # Eta - X B
        m=rng.normal(size=(n, 1)) * 0.4,  # X_F B_F
        F=rng.normal(size=(n, 1)),
        tau_F=np.array([1.4]),
        F_index=np.array([1]),
        rest=rng.uniform(0.2, 1.0, p),  # the other coefficients' sum_r d_rj beta_rj^2 (B's rows)
        loading_precision=rng.uniform(0.5, 2.0, (1, p)),
    )


def _run(model, inputs, seed: int, shrinkage: bool = False):
    """The move applied N_MOVES times in a row: (Lambda (moves, p), tau (moves, p), F (moves, n)),
    F in original coordinates; with ``shrinkage`` the second move alone (no exchange proposals), the
    loadings' prior precision phi_j delta with phi_j = ``loading_precision`` / DELTA0, and its deltas."""
    Qm = jnp.asarray(Q(model))
    variances = model.data.re.variances()
    rest, phi = jnp.asarray(inputs["rest"]), jnp.asarray(inputs["loading_precision"]) / DELTA0
    resid, m = Qm.T @ inputs["resid"], Qm.T @ inputs["m"]

    def move(carry, key):
        Lambda, tau, F, delta = carry
        trait_index, F_index = jnp.asarray(inputs["trait_index"], jnp.int32), jnp.asarray(inputs["F_index"], jnp.int32)
        if shrinkage:  # as the sampler runs it alone (tau fixed)
            ordered = exchange.OrderedShrinkage(delta, jnp.array([DELTA_SHAPE]), jnp.array([DELTA_RATE]))
            Lambda, F, ordered, ok = exchange.sample_loadings_rescale(
                key, variances, resid, Lambda, tau, trait_index, F, m, jnp.asarray(inputs["tau_F"]), F_index, ordered)
            delta = ordered.delta
        else:
            loading_precision = phi * delta[0]
            Lambda, tau, F, _, ok = exchange.sample_variance_exchange(
                key, variances, resid, Lambda, tau, trait_index, F, m, jnp.asarray(inputs["tau_F"]), F_index,
                rest + loading_precision[0] * Lambda[0] ** 2, loading_precision, jnp.asarray(TAU_SHAPE),
                jnp.asarray(TAU_RATE), N_TAU_COEFFICIENTS)
        return (Lambda, tau, F, delta), (Lambda[0], tau, F[:, 0], delta[0], ok)

    start = (jnp.asarray(inputs["Lambda"]), jnp.asarray(inputs["tau"]), Qm.T @ jnp.asarray(inputs["F"]),
             jnp.array([DELTA0]))
    _, (Lambda, tau, F, delta, ok) = jax.jit(lambda keys: jax.lax.scan(move, start, keys))(
        jax.random.split(jax.random.key(seed), N_MOVES))
    assert np.all(ok)
    if not shrinkage:
        assert np.all(np.asarray(delta) == DELTA0)
    return np.asarray(Lambda), np.asarray(tau), np.asarray(F) @ np.asarray(Qm).T, np.asarray(delta)


def _orbit(model, inputs):
    """The orbit's map t -> (lambda, tau) (module docstring) and the dense log density in t."""
    variances = np.asarray(model.data.re.variances())
    grid = np.asarray(model.data.h2_grid[:, 0])
    index, lam0, tau0 = inputs["trait_index"], inputs["Lambda"][0], inputs["tau"]
    vbar = variances.mean(axis=0)[index]
    psibar = variances[:, inputs["F_index"][0]].mean() / inputs["tau_F"][0]
    invariant = vbar / tau0 + psibar * lam0**2
    V_F = covariance(model, grid[inputs["F_index"][0]]) / inputs["tau_F"][0]
    V_traits = [covariance(model, grid[g]) for g in index]
    mean_scores = inputs["m"][:, 0]
    r = inputs["resid"].T.reshape(-1)  # vec, trait after trait

    def point(t):
        lam = lam0 * np.exp(t)
        rest = invariant - psibar * lam**2
        return lam, (vbar / rest if np.all(rest > 0) else None)

    def log_density(t):
        lam, tau = point(t)
        if tau is None:
            return -np.inf
        cov = np.kron(np.outer(lam, lam), V_F) + scipy.linalg.block_diag(*[V / t_j for V, t_j in zip(V_traits, tau)])
        centred = r - np.kron(lam, mean_scores)
        _, logdet = np.linalg.slogdet(cov)
        log_likelihood = -0.5 * logdet - 0.5 * centred @ np.linalg.solve(cov, centred)
        quadratic = inputs["rest"] + inputs["loading_precision"][0] * lam**2
        log_prior = np.sum((TAU_SHAPE - 1 + 0.5 * N_TAU_COEFFICIENTS) * np.log(tau) - tau * (TAU_RATE + 0.5 * quadratic))
        log_jacobian = len(lam) * t + 2 * np.sum(np.log(tau / tau0))
        return log_likelihood + log_prior + log_jacobian

    return point, log_density


def _shrinkage_orbit(model, inputs):
    """The second move's orbit t -> (lambda, delta) = (lambda0 e^t, DELTA0 e^-2t), tau fixed, and
    its dense log density in t (module docstring)."""
    grid = np.asarray(model.data.h2_grid[:, 0])
    index, lam0, tau = inputs["trait_index"], inputs["Lambda"][0], inputs["tau"]
    phi = inputs["loading_precision"][0] / DELTA0
    V_F = covariance(model, grid[inputs["F_index"][0]]) / inputs["tau_F"][0]
    residual_cov = scipy.linalg.block_diag(*[covariance(model, grid[g]) / t_j for g, t_j in zip(index, tau)])
    r = inputs["resid"].T.reshape(-1)

    def point(t):
        return lam0 * np.exp(t), DELTA0 * np.exp(-2 * t)

    def log_density(t):
        lam, delta = point(t)
        cov = np.kron(np.outer(lam, lam), V_F) + residual_cov
        centred = r - np.kron(lam, inputs["m"][:, 0])
        _, logdet = np.linalg.slogdet(cov)
        log_likelihood = -0.5 * logdet - 0.5 * centred @ np.linalg.solve(cov, centred)
        precision = tau * phi * delta
        log_loadings_prior = np.sum(0.5 * np.log(precision) - 0.5 * precision * lam**2)
        log_delta_prior = (DELTA_SHAPE - 1) * np.log(delta) - DELTA_RATE * delta
        log_jacobian = len(lam) * t - 2 * t
        return log_likelihood + log_loadings_prior + log_delta_prior + log_jacobian

    return point, log_density


def _bins_z(t, log_density, low, high):
    """z of the frequencies of ``t`` in N_BINS bins equiprobable under exp(log_density) (batch means)."""
    grid = np.linspace(low, high, 8001)
    log_f = np.array([log_density(x) for x in grid])
    f = np.exp(log_f - log_f.max())
    cdf = np.cumsum(f)
    cdf /= cdf[-1]
    edges = np.interp(np.arange(1, N_BINS) / N_BINS, cdf, grid)
    assert f[0] < 1e-9 and (f[-1] < 1e-9 or not np.isfinite(log_f[-1])), "the grid misses mass"
    indicators = (np.digitize(t, edges)[:, None] == np.arange(N_BINS)[None, :]).astype(float)
    return (indicators.mean(axis=0) - 1.0 / N_BINS) / batch_means_se(indicators)


def _scores_z(model, inputs, Lambda, tau, F):
    """z of mean and variance of F_l standardised by its dense conditional given each move's
    (lambda, tau): precision tau_F V_F^-1 + sum_j lambda_j^2 R_j^-1, linear term
    tau_F V_F^-1 m + sum_j lambda_j R_j^-1 r_j (R_j = V(h2_j) / tau_j), on 2000 of the moves."""
    grid = np.asarray(model.data.h2_grid[:, 0])
    V_F_inv = np.linalg.inv(covariance(model, grid[inputs["F_index"][0]]) / inputs["tau_F"][0])
    V_inv = [np.linalg.inv(covariance(model, grid[g])) for g in inputs["trait_index"]]
    chosen = np.linspace(0, N_MOVES - 1, 2000).astype(int)
    standardised = []
    for d in chosen:
        precision = V_F_inv + sum(Lambda[d, j] ** 2 * tau[d, j] * V for j, V in enumerate(V_inv))
        linear = V_F_inv @ inputs["m"][:, 0] + sum(Lambda[d, j] * tau[d, j] * V @ inputs["resid"][:, j]
                                                     for j, V in enumerate(V_inv))
        cov = np.linalg.inv(precision)
        standardised.append((F[d] - cov @ linear) / np.sqrt(np.diag(cov)))
    standardised = np.asarray(standardised)
    return np.concatenate([z_mean(standardised, 0.0, 1.0), z_variance_normal(standardised, 1.0)])


def exchange_z(seed: int = 0) -> np.ndarray:
    """Every z of the check (module docstring): the 8 bin frequencies of t = log c, then F_l's."""
    model, inputs = _problem()
    Lambda, tau, F, _ = _run(model, inputs, seed)
    point, log_density = _orbit(model, inputs)
    t = np.log(Lambda[:, 0] / inputs["Lambda"][0, 0])
    # the chain stays on the orbit: every lambda and tau is the orbit's point at its t
    expected = np.array([np.concatenate(point(x)) for x in t[:: N_MOVES // 200]])
    np.testing.assert_allclose(np.concatenate([Lambda, tau], axis=1)[:: N_MOVES // 200], expected, rtol=1e-8)
    return np.concatenate([_bins_z(t, log_density, -12.0, 4.0), _scores_z(model, inputs, Lambda, tau, F)])


def shrinkage_z(seed: int = 0) -> np.ndarray:
    """The second move's z (module docstring): 8 bin frequencies of t = log c, then F_l's."""
    model, inputs = _problem()
    Lambda, tau, F, delta = _run(model, inputs, seed, shrinkage=True)
    point, log_density = _shrinkage_orbit(model, inputs)
    t = np.log(Lambda[:, 0] / inputs["Lambda"][0, 0])
    np.testing.assert_allclose(tau, np.broadcast_to(inputs["tau"], tau.shape))
    np.testing.assert_allclose(np.column_stack([Lambda, delta])[:: N_MOVES // 200],
                               np.array([np.append(*point(x)) for x in t[:: N_MOVES // 200]]), rtol=1e-8)
    return np.concatenate([_bins_z(t, log_density, -8.0, 8.0), _scores_z(model, inputs, Lambda, tau, F)])


def test_exchange_move_matches_its_closed_form():
    z = exchange_z()
    assert np.all(np.abs(z) < Z_BOUND), np.round(z, 2)


def test_exchange_move_moves():
    """The chain on the orbit mixes: its lag-1 autocorrelation of t is well below 1, and it visits
    a range of t several times the proposal's sd."""
    model, inputs = _problem()
    for shrinkage, sd in ((False, exchange.EXCHANGE_STEP_SD), (True, exchange.SHRINKAGE_STEP_SD)):
        Lambda, _, _, _ = _run(model, inputs, seed=1, shrinkage=shrinkage)
        t = np.log(Lambda[:, 0] / inputs["Lambda"][0, 0])
        assert np.corrcoef(t[:-1], t[1:])[0, 1] < 0.8
        assert np.ptp(t) > 4 * sd


def test_shrinkage_move_matches_its_closed_form():
    z = shrinkage_z()
    assert np.all(np.abs(z) < Z_BOUND), np.round(z, 2)


def test_float32_shrinkage_move_keeps_precisions_in_range():
    """In float32 the second move rejects a proposal that would take a row's product of deltas past
    ``PRECISION_MAX_FLOAT32`` (the range the MGPS draw keeps): near-flat delta priors, loadings the
    data barely see, the last row's product started at 0.9 of the bound. With the guard removed the
    product reached 1.1e21 in these 400 x 5 proposals (the test fails)."""
    from slamjax._dtype import PRECISION_MAX_FLOAT32

    model, inputs = _problem()
    f32 = jnp.float32
    variances = model.data.re.variances().astype(f32)
    Qm = jnp.asarray(Q(model), f32)
    delta = jnp.array([1e9, 0.9 * PRECISION_MAX_FLOAT32 / 1e9], f32)
    ordered = exchange.OrderedShrinkage(delta, jnp.array([1.0, 1.0], f32), jnp.array([1e-30, 1e-30], f32))
    Lambda = jnp.asarray(inputs["Lambda"], f32) * 1e-6
    Lambda = jnp.concatenate([Lambda, Lambda], axis=0)
    F = jnp.concatenate([Qm.T @ jnp.asarray(inputs["F"], f32)] * 2, axis=1)
    m = jnp.zeros_like(F)

    def move(key):
        _, _, moved, ok = exchange.sample_loadings_rescale(
            key, variances, Qm.T @ jnp.asarray(inputs["resid"], f32), Lambda, jnp.asarray(inputs["tau"], f32),
            jnp.asarray(inputs["trait_index"], jnp.int32), F, m, jnp.array([1.4, 1.4], f32),
            jnp.array([1, 1], jnp.int32), ordered, steps=5)
        return moved.delta, ok

    deltas, ok = jax.jit(jax.vmap(move))(jax.random.split(jax.random.key(0), 400))
    products = np.cumprod(np.asarray(deltas, np.float64), axis=1)
    assert np.all(np.asarray(ok))
    assert products.max() <= PRECISION_MAX_FLOAT32
    assert np.mean(deltas[:, 1] != delta[1]) > 0.2  # the move still moves


def test_rescale_alone_equals_the_general_path():
    """The second move alone (``sample_loadings_rescale``, from the sufficient statistics A_i and M,
    as the sampler runs it by default) makes the same draws, key for key, as the general path with
    no exchange proposals (a pass over the residual per proposal): four factors, so the terms between
    factors (F A_i) and the rescaled terms of the factors already moved are exercised."""
    rng = np.random.default_rng(3)
    n, p, k, G = 30, 8, 4, 5
    h2 = np.linspace(0.0, 0.9, G)
    variances = jnp.asarray(h2[None, :] * rng.gamma(1.0, 1.0, n)[:, None] + 1.0 - h2[None, :])
    inputs = dict(variances=variances, resid=jnp.asarray(rng.normal(size=(n, p))),
                  Lambda=jnp.asarray(rng.normal(size=(k, p))), tau=jnp.asarray(rng.gamma(2.0, 1.0, p)),
                  trait_h2_index=jnp.asarray(rng.integers(0, G, p)), F=jnp.asarray(rng.normal(size=(n, k))),
                  prior_mean=jnp.asarray(0.3 * rng.normal(size=(n, k))), tau_F=jnp.asarray(rng.gamma(2.0, 1.0, k)),
                  F_h2_index=jnp.asarray(rng.integers(0, G, k)))
    ordered = exchange.OrderedShrinkage(jnp.asarray(rng.gamma(2.0, 1.0, k)), jnp.full(k, 2.0), jnp.full(k, 1.0))
    moved = 0
    for seed in range(5):
        key = jax.random.key(seed)
        Lambda, F, fast, ok = exchange.sample_loadings_rescale(key, *inputs.values(), ordered)
        reference = exchange.sample_variance_exchange(
            key, *inputs.values(), jnp.ones(p), jnp.ones((k, p)), jnp.asarray(TAU_SHAPE), jnp.asarray(TAU_RATE),
            N_TAU_COEFFICIENTS, steps=0, shrinkage=ordered, shrinkage_steps=exchange.SHRINKAGE_STEPS)
        assert bool(ok) and bool(reference[4])
        np.testing.assert_allclose(Lambda, reference[0], rtol=1e-10)
        np.testing.assert_allclose(F, reference[2], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(fast.delta, reference[3].delta, rtol=1e-10)
        np.testing.assert_allclose(reference[1], inputs["tau"], rtol=1e-14)
        moved += int(np.sum(np.abs(np.asarray(fast.delta) - np.asarray(ordered.delta)) > 1e-6))
    assert moved >= 5  # proposals were accepted, so the rescaled A and M were used
