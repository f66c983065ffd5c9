"""Terms every backend computes the same way from its h2 grid (the eigen backend is the case R = 1).

A column j at grid point g has effect entries of random effect m with prior variance h2_gm / tau_j
and a residual with variance (1 - sum_m h2_gm) / tau_j; ``block_of_column`` says which random
effect each effect entry belongs to.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._random import normal


def log_likelihood_on_grid(
    log_det_V: Float[Array, " G"], quadratic: Float[Array, "c G"], tau: Float[Array, " c"]
) -> Float[Array, "c G"]:
    """log N(resid_j; 0, V_g / tau_j) up to a constant in g, from log |V_g| and resid_j' V_g^-1 resid_j."""
    return -0.5 * log_det_V[None, :] - 0.5 * tau[:, None] * quadratic


def effect_prior_sd(
    h2_grid: Float[Array, "G R"], block_of_column: Int[Array, " S"], h2_index: Int[Array, " c"], tau: Float[Array, " c"]
) -> Float[Array, "S c"]:
    """sqrt(h2_m / tau_j) for every effect entry (of random effect m) and column j."""
    h2 = h2_grid[h2_index][:, block_of_column]  # (c, S)
    return jnp.sqrt(h2 / tau[:, None]).T


def residual_proportion(h2_grid: Float[Array, "G R"], h2_index: Int[Array, " c"]) -> Float[Array, " c"]:
    """1 - sum_m h2_m of every column j at its grid point."""
    return 1.0 - jnp.sum(h2_grid[h2_index], axis=-1)


class GridBackend(eqx.Module):
    """Base of the backends: the per-column prior terms, from the subclass's fields ``h2_grid``
    (G, R) and ``block_of_column`` (S,)."""

    def effect_prior_sd(self, h2_index: Int[Array, " c"], tau: Float[Array, " c"]) -> Float[Array, "S c"]:
        """Prior sd of every effect entry (in the backend's coordinates) of every column j."""
        return effect_prior_sd(self.h2_grid, self.block_of_column, h2_index, tau)

    def residual_proportion(self, h2_index: Int[Array, " c"]) -> Float[Array, " c"]:
        """1 - sum_m h2_m of every column j at its grid point."""
        return residual_proportion(self.h2_grid, h2_index)


def matheron_prior_draws(
    key: PRNGKeyArray,
    h2_grid: Float[Array, "G R"],
    block_of_column: Int[Array, " S"],
    h2_index: Int[Array, " c"],
    tau: Float[Array, " c"],
    n: int,
) -> tuple[Float[Array, "S c"], Float[Array, "n c"], Float[Array, "S c"]]:
    """The prior draws of Matheron's rule for the effects a of every column j at its grid point:
    a* ~ N(0, D / tau_j) and e* ~ N(0, (1 - sum h2) / tau_j I_n), D = diag(h2_m of every entry).

    Returns (a*, e*, the diagonal of D per column). Then a = a* + D A' V^-1 (resid - A a* - e*)
    is a draw of a | resid for the effects' design A on the rows.
    """
    key_a, key_e = jax.random.split(key)
    h2_entries = h2_grid[h2_index][:, block_of_column].T  # (S, c)
    prior_sd = effect_prior_sd(h2_grid, block_of_column, h2_index, tau)
    a_star = prior_sd * normal(key_a, prior_sd.shape, prior_sd.dtype)
    e_sd = jnp.sqrt(residual_proportion(h2_grid, h2_index) / tau)
    e_star = e_sd[None, :] * normal(key_e, (n, tau.shape[0]), prior_sd.dtype)
    return a_star, e_star, h2_entries
