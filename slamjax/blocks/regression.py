"""Steps 1 and 4: coefficients and total precision of each column, marginal over its random effects.

For column j (a trait, or a factor), with V_g the covariance at its grid point g = h2_index[j] and
W = [X, F] (traits) or X_F (factors):

    y_j ~ N(W beta_j, V_g / tau_j),   beta_j ~ N(0, (tau_j D_j)^-1),   tau_j ~ Gamma(a, b)

so with C_j = W' V_g^-1 W + D_j the pair (tau_j, beta_j) is drawn jointly:

    tau_j | y ~ Gamma(a + (n - n_flat) / 2, b + (y' V_g^-1 y - y' V_g^-1 W C_j^-1 W' V_g^-1 y) / 2)
    beta_j | tau_j, y ~ N(C_j^-1 W' V_g^-1 y, (tau_j C_j)^-1)

(n_flat: coefficients with zero prior precision, each costing half a unit of shape). The
random-effect backend supplies W' V^-1 W, W' V^-1 y and y' V^-1 y; one batched Cholesky of C
serves all columns, and Rue's algorithm draws beta from it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from .._linalg import cholesky, cholesky_ok, solve_lower, solve_lower_transpose
from .._random import normal
from ..priors._base import gamma_draw

__all__ = ["coefficient_posterior", "sample_regression"]


def coefficient_posterior(
    gram: Float[Array, "c q q"], Wy: Float[Array, "c q"], yy: Float[Array, " c"], prior_precision: Float[Array, "q c"]
) -> tuple[Float[Array, "c q q"], Float[Array, "c q"], Float[Array, " c"]]:
    """chol(C_j), chol(C_j)^-1 W'V^-1 y_j and the residual sum of squares
    y_j'V^-1 y_j - y_j'V^-1 W C_j^-1 W'V^-1 y_j of every column, with C_j = W'V^-1 W + D_j."""
    chol = cholesky(gram + jax.vmap(jnp.diag)(prior_precision.T))
    whitened = solve_lower(chol, Wy)
    return chol, whitened, jnp.maximum(yy - jnp.sum(whitened**2, axis=-1), 0.0)


def sample_regression(
    key: PRNGKeyArray,
    gram: Float[Array, "c q q"],
    Wy: Float[Array, "c q"],
    yy: Float[Array, " c"],
    prior_precision: Float[Array, "q c"],
    tau_shape: float,
    tau_rate: float,
    n: int,
    n_flat: int,
) -> tuple[Float[Array, "q c"], Float[Array, " c"], Bool[Array, ""]]:
    """Draws (beta, tau) for every column; returns (beta, tau, factorisation_ok)."""
    c, q = Wy.shape
    key_tau, key_beta = jax.random.split(key)
    shape = tau_shape + 0.5 * (n - n_flat)
    if q == 0:
        tau = gamma_draw(key_tau, shape, tau_rate + 0.5 * yy)
        return jnp.zeros((0, c), tau.dtype), tau, jnp.array(True)

    chol, whitened, sum_of_squares = coefficient_posterior(gram, Wy, yy, prior_precision)
    tau = gamma_draw(key_tau, shape, tau_rate + 0.5 * sum_of_squares)
    noise = normal(key_beta, (c, q), tau.dtype) / jnp.sqrt(tau)[:, None]
    beta = solve_lower_transpose(chol, whitened + noise)
    return beta.T, tau, jnp.all(cholesky_ok(chol))
