"""Geweke's (2004) joint-distribution test, shared by tests/test_geweke.py and tests/test_power.py.

The marginal-conditional simulator draws (theta, Eta) from the prior and the likelihood; the
successive-conditional simulator alternates one Gibbs sweep theta ~ p(theta | Eta) with a fresh
Eta ~ p(Eta | theta). Both target the same joint distribution, so the means of test functions
must agree within Monte Carlo error; a wrong conditional in the sweep shifts some of them.

The successive-conditional side runs ``n_chains`` vmapped chains, each started at its own draw
from the joint (so each is stationary from its first step under a correct sweep): the chain
means are independent, and their spread gives the standard error without batch means. The
difference of the two means is a Welch t statistic, mapped to the normal scale (same tail
probability), so every check is compared with the suite's ``Z_BOUND``.

Test functions: first and second moments of every parameter block and the cross moments through
which the blocks' conditionals tie them together (h2 x log tau, h2 x U^2 tau, Lambda^2 x the
shrinkage precision, tau_F x F'F, ...), plus the recorded quantities users read (Lambda and B_F
with the factor expansion divided out, G and R). Unbounded ones are mapped into (-1, 1) by
x / (1 + |x|), so that every mean has a finite variance.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats
from jax import lax

from slamjax.blocks.regression import coefficient_posterior
from slamjax.observation import Gaussian
from slamjax.posterior import _covariances, _loadings
from slamjax.sampler import sweep
from slamjax.state import B_precision, sample_latent_traits, sample_prior_state


# The test's chains are cheap to run and slow to compile (about 50 s of CPU for the sweep inside a
# vmapped scan): compiled with XLA's backend optimisations off they compile about 4x faster and run
# about 2x slower, which is the better trade at these sizes.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


def _compiled(function, *args):
    """``function`` jitted and compiled for ``args`` with ``FAST_COMPILE``."""
    return jax.jit(function).lower(*args).compile(compiler_options=FAST_COMPILE)


def _bounded(x):
    return x / (1.0 + jnp.abs(x))


def _upper(M):
    """The upper triangle (diagonal included) of the last two axes, flattened."""
    rows, columns = np.triu_indices(M.shape[-1])
    return M[..., rows, columns]


def intercept_free(Eta, X):
    """Eta with its component along the intercept column X[:, 0] removed (rotated coordinates)."""
    x = X[:, 0] / jnp.linalg.norm(X[:, 0])
    return Eta - jnp.outer(x, x @ Eta)


def _regression_checks(re, y, W, h2_index, prior_precision, coef, tau, tau_shape, tau_rate, n_flat):
    """Two functions of a column block whose expectations its conditionals fix sharply:
    tau_j (b + S_j / 2) / (a + (n - n_flat) / 2), mean 1 with sd about (a + n/2)^-1/2 when tau_j is drawn
    from its Gamma conditional given h2_j (S_j the residual sum of squares marginal over U and
    beta_j); and tau_j (beta_j - m_j)' C_j (beta_j - m_j) / q, mean 1 when beta_j | tau_j, h2_j is
    right (m_j, C_j its conditional mean and precision / tau_j)."""
    n, q = W.shape
    gram, Wy, yy = re.regression_statistics(y, W, h2_index)
    if q == 0:
        rate = tau_rate + 0.5 * yy
        return tau * rate / (tau_shape + 0.5 * n), None
    chol, whitened, sum_of_squares = coefficient_posterior(gram, Wy, yy, prior_precision)
    score = tau * (tau_rate + 0.5 * sum_of_squares) / (tau_shape + 0.5 * (n - n_flat))
    standardised = jnp.einsum("cqr,rc->cq", jnp.swapaxes(chol, 1, 2), coef) - whitened
    return score, tau * jnp.sum(standardised**2, axis=1) / q


def geweke_functions(state, data, flat_intercept: bool = False) -> dict:
    """Test functions of one state. With ``flat_intercept`` the intercept B[0] and the Eta's
    component along the intercept are left out: under a flat intercept prior only the rest of the
    joint is proper (and the sweep's draws of the rest do not depend on that component)."""
    grid = data.h2_grid
    h2 = grid[state.resid_h2_index]  # (p, R)
    F_h2 = grid[state.F_h2_index]  # (k, R)
    tau, tau_F = state.tot_Eta_prec, state.tot_F_prec
    log_tau, log_tau_F = jnp.log(tau), jnp.log(tau_F)
    n, p = state.Eta.shape
    k = state.F.shape[1]
    B = state.B[1:] if flat_intercept else state.B
    B_prec = B_precision(data, state.B_prior, p)
    B_prec = B_prec[1:] if flat_intercept else B_prec
    Lambda_prec = data.Lambda_prior.precision(state.Lambda_prior)
    B_F_prec = data.B_F_prior.precision(state.B_F_prior)
    Eta = intercept_free(state.Eta, data.X) if flat_intercept else state.Eta
    U_R2 = jnp.mean(state.U_R**2, axis=0) * tau  # (p,)
    U_F2 = jnp.mean(state.U_F**2, axis=0) * tau_F  # (k,)
    E_F = state.F - data.X_F @ state.B_F
    FF = state.F.T @ state.F / n
    Lambda_star, (G, R) = _loadings(state), _covariances(state, data)
    re = data.re
    Eta_rot = re.rotate(state.Eta) if data.groups is not None else state.Eta  # backend coordinates
    tau_score, beta_score = _regression_checks(
        re, Eta_rot, jnp.concatenate([data.X, state.F], axis=1), state.resid_h2_index,
        jnp.concatenate([B_precision(data, state.B_prior, p), Lambda_prec], axis=0),
        jnp.concatenate([state.B, state.Lambda], axis=0), tau, data.tau_shape, data.tau_rate, data.n_flat)
    tau_F_score, B_F_score = _regression_checks(
        re, state.F, data.X_F, state.F_h2_index, B_F_prec, state.B_F, tau_F, data.F_tau_shape, data.F_tau_rate, 0)
    e = Eta_rot - data.X @ state.B - state.F @ state.Lambda - re.effect_on_rows(state.U_R)
    e_F = E_F - re.effect_on_rows(state.U_F)
    functions = {
        "log tau": log_tau,
        "(log tau)^2": log_tau**2,
        "log tau_F": log_tau_F,
        "(log tau_F)^2": log_tau_F**2,
        "h2": h2.ravel(),
        "h2^2": (h2**2).ravel(),
        "h2 log tau": (h2 * log_tau[:, None]).ravel(),
        "F_h2": F_h2.ravel(),
        "F_h2^2": (F_h2**2).ravel(),
        "F_h2 log tau_F": (F_h2 * log_tau_F[:, None]).ravel(),
        "B": _bounded(B).ravel(),
        "B^2 tau D": _bounded(B**2 * tau[None, :] * B_prec).ravel(),
        "B_F": _bounded(state.B_F).ravel(),
        "B_F^2 tau_F D": _bounded(state.B_F**2 * tau_F[None, :] * B_F_prec).ravel(),
        "|Lambda|": jnp.abs(_bounded(state.Lambda)).ravel(),
        "Lambda^2 tau D": _bounded(state.Lambda**2 * tau[None, :] * Lambda_prec).ravel(),
        "Lambda^2 delta": _bounded(state.Lambda**2 * jnp.cumprod(state.Lambda_prior.delta)[:, None]).ravel(),
        "Lambda_a Lambda_b": _bounded(_upper(jnp.einsum("aj,bj->jab", state.Lambda, state.Lambda))).ravel(),
        "Lambda*^2": _bounded(Lambda_star**2).ravel(),
        "B_F*^2": _bounded(state.B_F**2 * tau_F[None, :]).ravel(),
        "G": _bounded(_upper(G)).ravel(),
        "R": _bounded(_upper(R)).ravel(),
        "log delta": jnp.log(state.Lambda_prior.delta),
        "(log delta)^2": jnp.log(state.Lambda_prior.delta) ** 2,
        "log phi": jnp.mean(jnp.log(state.Lambda_prior.phi), axis=1),
        "log psi": jnp.log(state.B_prior.psi).ravel(),
        "log row_prec": jnp.log(state.B_prior.row_prec),
        "log psi_F": jnp.log(state.B_F_prior.psi).ravel(),
        "F'F": _bounded(_upper(FF)),
        "tau_F F'F": _bounded(_upper(FF * jnp.sqrt(tau_F[:, None] * tau_F[None, :]))),
        "tau_F E_F^2": _bounded(jnp.mean(E_F**2, axis=0) * tau_F),
        "F_h2 tau_F E_F^2": _bounded(F_h2 * (jnp.mean(E_F**2, axis=0) * tau_F)[:, None]).ravel(),
        "U_R^2 tau": _bounded(U_R2),
        "h2 U_R^2 tau": _bounded(h2 * U_R2[:, None]).ravel(),
        "U_F^2 tau_F": _bounded(U_F2),
        "F_h2 U_F^2 tau_F": _bounded(F_h2 * U_F2[:, None]).ravel(),
        "Eta^2": jnp.mean(_bounded(Eta**2), axis=0),
        "Eta'Eta": _bounded(_upper(Eta.T @ Eta / n)),
        "tau rate / shape": tau_score,
        "h2 tau rate / shape": (h2 * tau_score[:, None]).ravel(),
        "tau_F rate / shape": tau_F_score,
        "tau beta'C beta / q": beta_score,
        "tau e'e / (1 - h2) n": tau * jnp.sum(e**2, axis=0) / (re.residual_proportion(state.resid_h2_index) * n),
        "tau_F e_F'e_F / (1 - h2_F) n": tau_F * jnp.sum(e_F**2, axis=0) / (re.residual_proportion(state.F_h2_index) * n),
    }
    if B_F_score is not None:
        functions["tau_F B_F'C B_F / q"] = B_F_score
    for name, value in data.observation.records(state.obs).items():  # the link's own parameters
        functions[f"obs {name}"] = _bounded(value).ravel()
        functions[f"obs {name}^2"] = _bounded(value**2).ravel()
    if data.markers is not None:  # marker effects of the factors and their prior
        markers = state.markers
        fitted = data.markers.product(markers.B_M)
        functions.update({
            "B_M": _bounded(markers.B_M).ravel(),
            "B_M^2 tau_F": _bounded(markers.B_M**2 * tau_F[None, :]).ravel(),
            "B_M_a B_M_b": _bounded(_upper(markers.B_M.T @ markers.B_M * jnp.sqrt(tau_F[:, None] * tau_F[None, :]))),
            "included": jnp.mean(markers.classes > 0, axis=0).astype(tau_F.dtype),
            "tau_F (M B_M)^2": _bounded(jnp.mean(fitted**2, axis=0) * tau_F),
            "F'M B_M": _bounded(jnp.mean(state.F * fitted, axis=0) * tau_F),
        })
        for i, leaf in enumerate(jax.tree.leaves(markers.prior)):
            log_leaf = jnp.log(leaf).reshape(-1, leaf.shape[-1]).mean(axis=0) if leaf.ndim else jnp.log(leaf)
            functions[f"log marker prior {i}"] = _bounded(log_leaf)
    if not flat_intercept:
        functions["Eta mean"] = _bounded(jnp.mean(state.Eta, axis=0) * jnp.sqrt(n))
    del k
    return functions


def _flatten(values: dict) -> tuple[jnp.ndarray, list[str]]:
    names = [f"{name}[{i}]" for name, v in values.items() for i in range(jnp.size(v))]
    return jnp.concatenate([jnp.ravel(v) for v in values.values()]), names


def with_data(data, state):
    """Data consistent with the latent traits of ``state`` (observed cells of Q Eta)."""
    if data.groups is not None:  # Eta is unrotated; each group's data is Q_m' Eta[O_m, T_m]
        groups = data.groups
        Eta = jnp.pad(state.Eta, ((0, 1), (0, 1)))
        Y = jax.vmap(lambda re, rows, traits: re.rotate(Eta[rows][:, traits]))(groups.re, groups.rows, groups.traits)
        return eqx.tree_at(lambda d: d.groups.Y_group, data, Y)
    if data.latent_is_data:
        return data
    latent = data.Y_mean + data.Y_scale * data.re.unrotate(state.Eta)
    return eqx.tree_at(lambda d: d.observation, data, data.observation.simulate(None, state.obs, latent))


def function_names(data, flat_intercept: bool = False) -> list[str]:
    """Names of the flattened test functions, in ``_flatten``'s (insertion) order: read while
    tracing, as a dict returned by ``jax.eval_shape`` comes back with its keys sorted."""
    names: list[str] = []

    def trace(key):
        values = geweke_functions(sample_prior_state(key, data), data, flat_intercept)
        names.extend(f"{name}[{i}]" for name, v in values.items() for i in range(int(np.prod(v.shape))))
        return jnp.zeros(())

    jax.eval_shape(trace, jax.random.key(0))
    return names


def marginal_conditional(prior_data, data, n_draws: int, seed: int, flat_intercept: bool = False, batch: int = 10_000):
    """Test functions of ``n_draws`` independent draws from the joint (prior, then Eta).

    ``prior_data`` draws the states (it differs from ``data`` only in the intercept's prior,
    which must be proper to be drawn; the functions of a flat-intercept model ignore it)."""

    def functions(keys):
        return jax.vmap(lambda key: _flatten(geweke_functions(sample_prior_state(key, prior_data), data,
                                                              flat_intercept))[0])(keys)

    assert n_draws % batch == 0, "n_draws must be a multiple of batch"
    keys = jax.random.split(jax.random.key(seed), n_draws).reshape(-1, batch)
    compiled = _compiled(functions, keys[0])
    return np.concatenate([np.asarray(compiled(chunk)) for chunk in keys])


def successive_conditional(
    prior_data, data, n_chains: int, n_steps: int, seed: int, thin: int = 1, flat_intercept: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Chain means (n_chains, functions) of the successive-conditional simulator (``n_steps``
    steps of ``thin`` sweeps, each sweep followed by a fresh Eta ~ p(Eta | theta)), and each
    chain's failure bits (the blocks that produced non-finite values, ``sampler.BLOCK_NAMES``)."""

    link = data.groups is None and not isinstance(data.observation, Gaussian)

    def latent(state):
        return data.Y_mean + data.Y_scale * data.re.unrotate(state.Eta)

    def chain(key):
        start = sample_prior_state(jax.random.fold_in(key, -1 & 0x7FFFFFFF), prior_data)
        size = _flatten(geweke_functions(start, data, flat_intercept))[0].shape[0]
        # with a link, the data y are drawn given (Eta, the link's parameters) and carried
        observation = data.observation.simulate(jax.random.fold_in(key, -2 & 0x7FFFFFFF), start.obs, latent(start))

        def one_step(carry, t):
            state, observation, total, failures = carry
            for i in range(thin):
                step_key = jax.random.fold_in(key, thin * t + i)
                if link:  # theta, Eta | y; then y | Eta, theta
                    state, failed = sweep(jax.random.fold_in(step_key, 0), state,
                                          eqx.tree_at(lambda d: d.observation, data, observation))
                    observation = data.observation.simulate(jax.random.fold_in(step_key, 1), state.obs, latent(state))
                else:  # theta | y (= the observed cells of Eta); then (Eta, y) | theta
                    state, failed = sweep(jax.random.fold_in(step_key, 0), state, with_data(data, state))
                    Eta = sample_latent_traits(jax.random.fold_in(step_key, 1), state, data)
                    state = eqx.tree_at(lambda s: s.Eta, state, Eta)
                failures = failures | failed
            total = total + _flatten(geweke_functions(state, data, flat_intercept))[0]
            return (state, observation, total, failures), None

        (_, _, total, failures), _ = lax.scan(
            one_step, (start, observation, jnp.zeros(size), jnp.int32(0)), jnp.arange(n_steps))
        return total / n_steps, failures

    keys = jax.random.split(jax.random.key(seed), n_chains)
    means, failures = _compiled(jax.vmap(chain), keys)(keys)
    return np.asarray(means), np.asarray(failures)


def geweke_z(prior: np.ndarray, chain_means: np.ndarray) -> np.ndarray:
    """z-scores of (successive mean - prior mean): Welch's t with Satterthwaite's degrees of
    freedom, mapped to the normal quantile of the same two-sided tail probability."""
    N, C = prior.shape[0], chain_means.shape[0]
    var_prior = prior.var(axis=0, ddof=1) / N
    var_chain = chain_means.var(axis=0, ddof=1) / C
    se = np.sqrt(var_prior + var_chain)
    t = (chain_means.mean(axis=0) - prior.mean(axis=0)) / np.where(se > 0, se, np.inf)
    df = (var_prior + var_chain) ** 2 / (var_prior**2 / (N - 1) + var_chain**2 / (C - 1) + 1e-300)
    tail = scipy.stats.t.sf(np.abs(t), np.maximum(df, 1.0))
    z = np.sign(t) * -scipy.stats.norm.ppf(np.maximum(tail, 1e-300))
    return np.where(np.isfinite(chain_means).all(axis=0), z, np.inf)  # a chain gone non-finite fails


def run_geweke(model, *, n_prior=40_000, n_chains=64, n_steps=1000, thin=1, seed=0, prior_model=None,
               flat_intercept=False):
    """(z, names) of Geweke's test of ``model``'s sweep; ``prior_model`` draws the states (default
    ``model``). The last entry, "failed blocks", is infinite when a sweep of some chain reported a
    non-finite draw (the NaN guard's bits), else 0."""
    data = model.data
    prior_data = (prior_model or model).data
    prior = marginal_conditional(prior_data, data, n_prior, seed=2 * seed + 11, flat_intercept=flat_intercept)
    chains, failures = successive_conditional(prior_data, data, n_chains, n_steps, seed=2 * seed + 12, thin=thin,
                                              flat_intercept=flat_intercept)
    failed = np.inf if np.any(failures) else 0.0
    return np.append(geweke_z(prior, chains), failed), [*function_names(data, flat_intercept), "failed blocks"]


def worst(z: np.ndarray, names: list[str], count: int = 5) -> str:
    order = np.argsort(-np.abs(z))[:count]
    return ", ".join(f"{names[i]}: z={z[i]:.2f}" for i in order)
