"""A start near the posterior mode: maximum-likelihood factor analysis fitted with optax.

The standardised traits (missing cells at their mean, 0) are fitted by the plain factor model

    y_i ~ N(0, Lambda' Lambda + Psi),   Lambda: k x p,  Psi = diag(psi),

maximising the log-likelihood with Adam over (Lambda, log psi). With Woodbury's identity each step
costs O(n p k + k^3), never a p x p matrix:

    log|Sigma| = sum log psi + log|I + Lambda Psi^-1 Lambda'|,
    y' Sigma^-1 y = y' Psi^-1 y - ||L^-1 Lambda Psi^-1 y||^2,  L L' = I + Lambda Psi^-1 Lambda'.

The chain then starts from Lambda, the factor scores' conditional means
E[f_i | y_i] = (I + Lambda Psi^-1 Lambda')^-1 Lambda Psi^-1 y_i, and tau = 1 / psi; the other
blocks start as in ``init_state``. A start, not a fit: the sampler forgets it during warm-up.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from ._sampler_data import SamplerData
from ._x64 import float64
from .state import State, init_state, strongly_typed

__all__ = ["factor_analysis", "factor_analysis_start"]


def _negative_log_likelihood(params, Y: Float[Array, "n p"]):
    Lambda, log_psi = params
    n, p = Y.shape
    k = Lambda.shape[0]
    psi_inv = jnp.exp(-log_psi)
    inner = jnp.eye(k) + (Lambda * psi_inv[None, :]) @ Lambda.T
    chol = jnp.linalg.cholesky(inner)
    projected = jax.scipy.linalg.solve_triangular(chol, (Lambda * psi_inv[None, :]) @ Y.T, lower=True)
    log_det = jnp.sum(log_psi) + 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))
    quadratic = jnp.sum(Y**2 * psi_inv[None, :]) - jnp.sum(projected**2)
    return 0.5 * (n * log_det + quadratic) / (n * p)


@float64
def factor_analysis(
    key: PRNGKeyArray, Y: Float[Array, "n p"], k: int, steps: int = 500, learning_rate: float = 0.05
) -> tuple[Float[Array, "k p"], Float[Array, " p"]]:
    """Maximum-likelihood (Lambda, psi) of the factor model for centred Y, by Adam."""
    p = Y.shape[1]
    params = (0.1 * jax.random.normal(key, (k, p)), jnp.log(jnp.full((p,), 0.5)))
    optimiser = optax.adam(learning_rate)

    def step(carry, _):
        params, opt_state = carry
        grads = jax.grad(_negative_log_likelihood)(params, Y)
        updates, opt_state = optimiser.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, opt_state), None

    (params, _), _ = jax.lax.scan(step, (params, optimiser.init(params)), None, length=steps)
    Lambda, log_psi = params
    return Lambda, jnp.exp(jnp.clip(log_psi, -6.0, 3.0))


@float64
@eqx.filter_jit
def factor_analysis_start(key: PRNGKeyArray, data: SamplerData, steps: int = 500) -> State:
    """``init_state`` with Lambda, F and tau from a maximum-likelihood factor analysis."""
    key_init, key_fit = jax.random.split(key)
    state = init_state(key_init, data)
    Y = data.Y_start  # standardised, missing cells at 0 (the trait mean)
    Lambda, psi = factor_analysis(key_fit, Y, data.n_factors, steps)
    k = Lambda.shape[0]
    weighted = Lambda / psi[None, :]
    scores = jnp.linalg.solve(jnp.eye(k) + weighted @ Lambda.T, weighted @ Y.T).T  # (n, k), original rows
    F = data.re.rotate(scores)  # the sampler's coordinates (both missing-data paths)
    return strongly_typed(eqx.tree_at(
        lambda s: (s.Lambda, s.F, s.tot_Eta_prec), state, (Lambda, F, 1.0 / psi)
    ))
