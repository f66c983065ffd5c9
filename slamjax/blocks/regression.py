"""Steps 1 and 4: coefficients and total precision of each column, marginal over its random effect.

For column j (a trait, or a factor) in rotated coordinates, with V_g = diag(v_g) at grid point
g = h2_index[j] and W = [X, F] (traits) or X_F (factors):

    y_j ~ N(W beta_j, V_g / tau_j),   beta_j ~ N(0, (tau_j D_j)^-1),   tau_j ~ Gamma(a, b)

so with C_j = W' V_g^-1 W + D_j the pair (tau_j, beta_j) is drawn jointly:

    tau_j | y ~ Gamma(a + (n - n_flat) / 2, b + (y' V_g^-1 y - y' V_g^-1 W C_j^-1 W' V_g^-1 y) / 2)
    beta_j | tau_j, y ~ N(C_j^-1 W' V_g^-1 y, (tau_j C_j)^-1)

(n_flat: coefficients with zero prior precision, each costing half a unit of shape). W' V_g^-1 W
is formed once per grid point and gathered per column; one batched Cholesky serves all columns.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from .._random import normal
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .._linalg import cholesky, cholesky_ok, solve_lower, solve_lower_transpose
from ..priors._base import gamma_draw

__all__ = ["sample_regression"]


def sample_regression(
    key: PRNGKeyArray,
    y: Float[Array, "n c"],
    W: Float[Array, "n q"],
    variances: Float[Array, "n G"],
    h2_index: Int[Array, " c"],
    prior_precision: Float[Array, "q c"],
    tau_shape: float,
    tau_rate: float,
    n_flat: int,
) -> tuple[Float[Array, "q c"], Float[Array, " c"], Bool[Array, ""]]:
    """Draws (beta, tau) for every column; returns (beta, tau, factorisation_ok)."""
    n, c = y.shape
    q = W.shape[1]
    key_tau, key_beta = jax.random.split(key)
    inverse_variances = 1.0 / variances
    y_weighted = y * inverse_variances[:, h2_index]
    yVy = jnp.sum(y * y_weighted, axis=0)
    shape = tau_shape + 0.5 * (n - n_flat)
    if q == 0:
        tau = gamma_draw(key_tau, shape, tau_rate + 0.5 * yVy)
        return jnp.zeros((0, c)), tau, jnp.array(True)

    gram = jnp.einsum("ng,na,nb->gab", inverse_variances, W, W)
    precision = gram[h2_index] + jax.vmap(jnp.diag)(prior_precision.T)
    rhs = (W.T @ y_weighted).T
    chol = cholesky(precision)
    whitened = solve_lower(chol, rhs)
    sum_of_squares = jnp.maximum(yVy - jnp.sum(whitened**2, axis=-1), 0.0)
    tau = gamma_draw(key_tau, shape, tau_rate + 0.5 * sum_of_squares)
    noise = normal(key_beta, (c, q)) / jnp.sqrt(tau)[:, None]
    beta = solve_lower_transpose(chol, whitened + noise)
    return beta.T, tau, jnp.all(cholesky_ok(chol))
