"""Steps 2 and 5: the discrete h2 draw of each column, marginal over its random effect.

With rotated residuals e_j = y_j - W beta_j and diagonal V_g = diag(v_g),

    P(h2_j = grid[g] | e_j, tau_j) propto prior_g |V_g|^(-1/2) exp(-tau_j e_j' V_g^-1 e_j / 2),

evaluated for every column and grid point with one (c x n) (n x G) matrix product.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

__all__ = ["h2_log_probabilities", "sample_h2_index"]


def h2_log_probabilities(
    resid: Float[Array, "n c"],
    tau: Float[Array, " c"],
    variances: Float[Array, "n G"],
    log_prior: Float[Array, " G"],
) -> Float[Array, "c G"]:
    """Unnormalised log posterior probability of every grid point for every column."""
    log_det = jnp.sum(jnp.log(variances), axis=0)
    quadratic = (resid**2).T @ (1.0 / variances)
    return log_prior[None, :] - 0.5 * log_det[None, :] - 0.5 * tau[:, None] * quadratic


def sample_h2_index(
    key: PRNGKeyArray,
    resid: Float[Array, "n c"],
    tau: Float[Array, " c"],
    variances: Float[Array, "n G"],
    log_prior: Float[Array, " G"],
) -> Int[Array, " c"]:
    """Draws the grid index of every column's h2 from its discrete conditional."""
    return jax.random.categorical(key, h2_log_probabilities(resid, tau, variances, log_prior), axis=-1)
