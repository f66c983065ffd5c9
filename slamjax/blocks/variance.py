"""Steps 2 and 5: the discrete h2 draw of each column, marginal over its random effects.

Conditional on the coefficients and total precision (MegaLMM's step):

    P(h2_j = grid[g] | e_j, tau_j) propto prior_g N(e_j; 0, V_g / tau_j),

with e_j = y_j - W beta_j; or collapsed, marginal over beta_j and tau_j as well
(``collapsed_h2_log_likelihood``), after which (beta_j, tau_j) are drawn given the new h2_j. The
random-effect backend evaluates the log densities for every column and grid point at once.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .regression import coefficient_posterior

__all__ = ["collapsed_h2_log_likelihood", "sample_h2_index"]


def sample_h2_index(
    key: PRNGKeyArray, log_likelihood: Float[Array, "c G"], log_prior: Float[Array, " G"]
) -> Int[Array, " c"]:
    """Draws the grid index of every column's h2 vector from its discrete conditional."""
    return jax.random.categorical(key, log_likelihood + log_prior[None, :], axis=-1).astype(jnp.int32)


# Bytes of the (G, c, q, q) matrices above which the collapsed likelihood loops over grid points.
_BATCH_BYTES = 2**27


def collapsed_h2_log_likelihood(
    gram: Float[Array, "G q q"],
    Wy: Float[Array, "G c q"],
    yy: Float[Array, "G c"],
    log_det_V: Float[Array, " G"],
    prior_precision: Float[Array, "q c"],
    tau_shape: float,
    tau_rate: float,
    n,
    n_flat: int,
) -> Float[Array, "c G"]:
    """log p(y_j | h2 = grid[g]) marginal over beta_j, tau_j and the random effects, up to a constant in g.

    With C_jg = W' V_g^-1 W + D_j and S_jg = y_j' V_g^-1 y_j - y_j' V_g^-1 W C_jg^-1 W' V_g^-1 y_j,

        log p(y_j | g) = -1/2 log|V_g| - 1/2 log|C_jg| - (a + (n - n_flat) / 2) log(b + S_jg / 2),

    a Student-t likelihood (tau ~ Gamma(a, b); the prior of beta_j scales with tau_j). Costs one
    q x q Cholesky per column and grid point. A failed factorisation gives NaN.
    """
    shape = tau_shape + 0.5 * (n - n_flat)
    q = gram.shape[-1]
    G, c = yy.shape

    def at_grid_point(args):
        gram_g, Wy_g, yy_g, log_det_g = args
        if q == 0:
            return -0.5 * log_det_g - shape * jnp.log(tau_rate + 0.5 * yy_g)
        chol, _, sum_of_squares = coefficient_posterior(jnp.broadcast_to(gram_g, (c, q, q)), Wy_g, yy_g, prior_precision)
        log_det_C = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
        return -0.5 * log_det_g - 0.5 * log_det_C - shape * jnp.log(tau_rate + 0.5 * sum_of_squares)

    args = (gram, Wy, yy, log_det_V)
    if G * c * q * q * 8 <= _BATCH_BYTES:
        return jax.vmap(at_grid_point)(args).T
    return lax.map(at_grid_point, args).T
