"""ARD prior with covariate-row shrinkage, for fixed effects B and B_F.

    coef_ij | tau_j ~ N(0, 1 / (tau_j * row_prec_i * psi_ij))
    psi_ij ~ Gamma(nu / 2, nu / 2)          (element-wise, Student-t marginally)
    row_prec_i ~ Gamma(row_shape, row_rate)  (one per covariate row)
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._base import CoefficientPrior, gamma_draw

__all__ = ["ARD", "ARDState"]


class ARDState(eqx.Module):
    psi: Float[Array, "m p"]
    row_prec: Float[Array, " m"]


class ARD(CoefficientPrior):
    """Element-wise Student-t (ARD) shrinkage with a shared precision per covariate row."""

    nu: float = eqx.field(static=True, default=3.0, converter=float)  # static: a known shape draws faster
    row_shape: float = 2.0
    row_rate: float = 1.0

    def init(self, m: int, p: int) -> ARDState:
        return ARDState(psi=jnp.ones((m, p)), row_prec=jnp.full((m,), self.row_shape / self.row_rate))

    def sample_prior(self, key: PRNGKeyArray, m: int, p: int) -> ARDState:
        k_psi, k_row = jax.random.split(key)
        return ARDState(
            psi=gamma_draw(k_psi, jnp.full((m, p), self.nu / 2), self.nu / 2),
            row_prec=gamma_draw(k_row, jnp.full((m,), self.row_shape), self.row_rate),
        )

    def precision(self, state: ARDState) -> Float[Array, "m p"]:
        return state.row_prec[:, None] * state.psi

    def sample(self, key, state: ARDState, coef, tau) -> ARDState:
        """psi_ij ~ Gamma((nu+1)/2, (nu + tau_j row_prec_i coef_ij^2)/2), then
        row_prec_i ~ Gamma(row_shape + p/2, row_rate + sum_j tau_j psi_ij coef_ij^2 / 2)."""
        k_psi, k_row = jax.random.split(key)
        scaled_sq = coef**2 * tau[None, :]
        psi = gamma_draw(k_psi, (self.nu + 1) / 2, (self.nu + state.row_prec[:, None] * scaled_sq) / 2)
        p = coef.shape[1]
        row_prec = gamma_draw(
            k_row, self.row_shape + p / 2, self.row_rate + 0.5 * jnp.sum(psi * scaled_sq, axis=1)
        )
        return ARDState(psi=psi, row_prec=row_prec)
