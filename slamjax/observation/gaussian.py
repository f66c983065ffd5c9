"""Gaussian observation model: y = eta where observed; missing cells are imputed.

    eta_ij | rest ~ N(fitted_ij, (1 - h2_j) / tau_j)   for missing (i, j); eta_ij = y_ij otherwise,

with fitted = X B + F Lambda + Z U_R. Works in the original coordinates (cells are missing there)
and returns the rotated latent traits the other blocks use.
"""

from __future__ import annotations

import jax.numpy as jnp
from .._random import normal
from jaxtyping import Array, Bool, Float, PRNGKeyArray

__all__ = ["impute_missing"]


def impute_missing(
    key: PRNGKeyArray,
    fitted: Float[Array, "n p"],
    resid_variance: Float[Array, " p"],
    Y_filled: Float[Array, "n p"],
    observed: Bool[Array, "n p"],
) -> Float[Array, "n p"]:
    """Latent traits with observed cells kept and missing cells drawn from their conditional."""
    draw = fitted + jnp.sqrt(resid_variance)[None, :] * normal(key, fitted.shape)
    return jnp.where(observed, Y_filled, draw)
