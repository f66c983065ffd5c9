"""Steps 2 and 5: the discrete h2 draw of each column, marginal over its random effects.

    P(h2_j = grid[g] | e_j, tau_j) propto prior_g N(e_j; 0, V_g / tau_j),

with e_j = y_j - W beta_j; the random-effect backend evaluates the log densities for every
column and grid point at once.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

__all__ = ["sample_h2_index"]


def sample_h2_index(
    key: PRNGKeyArray, log_likelihood: Float[Array, "c G"], log_prior: Float[Array, " G"]
) -> Int[Array, " c"]:
    """Draws the grid index of every column's h2 vector from its discrete conditional."""
    return jax.random.categorical(key, log_likelihood + log_prior[None, :], axis=-1).astype(jnp.int32)
