"""Terms every backend with several random effects computes the same way from its h2 grid."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float, Int


def log_likelihood_on_grid(
    log_det_V: Float[Array, " G"], quadratic: Float[Array, "G c"], tau: Float[Array, " c"]
) -> Float[Array, "c G"]:
    """log N(resid_j; 0, V_g / tau_j) up to a constant in g, from log |V_g| and resid_j' V_g^-1 resid_j."""
    return -0.5 * log_det_V[None, :] - 0.5 * tau[:, None] * quadratic.T


def effect_prior_sd(
    h2_grid: Float[Array, "G R"], block_of_column: Int[Array, " S"], h2_index: Int[Array, " c"], tau: Float[Array, " c"]
) -> Float[Array, "S c"]:
    """sqrt(h2_m / tau_j) for every effect entry (of random effect m) and column j."""
    h2 = h2_grid[h2_index][:, block_of_column]  # (c, S)
    return jnp.sqrt(h2 / tau[:, None]).T


def residual_proportion(h2_grid: Float[Array, "G R"], h2_index: Int[Array, " c"]) -> Float[Array, " c"]:
    return 1.0 - jnp.sum(h2_grid[h2_index], axis=-1)
