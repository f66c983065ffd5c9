"""Priors on the loadings Lambda (k x p) with an ordered, multiplicative column shrinkage.

Both priors share the multiplicative gamma process of Bhattacharya & Dunson (2011):
    delta_1 ~ Gamma(delta_1_shape, delta_1_rate),  delta_h ~ Gamma(delta_2_shape, delta_2_rate) (h > 1)
    global precision of factor h:  prod_{l <= h} delta_l
and differ in the local, element-wise part:
    MGPS:       Lambda_hj ~ N(0, 1 / (tau_j phi_hj prod delta)),  phi_hj ~ Gamma(nu/2, nu/2)
    Horseshoe:  Lambda_hj ~ N(0, lambda2_hj / (tau_j prod delta)), lambda_hj ~ C+(0, 1)
                (through lambda2 | xi ~ InvGamma(1/2, 1/xi), xi ~ InvGamma(1/2, 1); Makalic & Schmidt 2016)

In a float32 run the deltas are drawn so that every cumulative product stays below
``_dtype.PRECISION_MAX_FLOAT32`` (1.8e19) and the precisions are clamped there
(``_dtype.clamp_precision``): factors the data do not need keep drawing large deltas, and their
products would pass float32's range within hundreds of sweeps. float64 draws are unchanged.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float

from .._dtype import PRECISION_MAX_FLOAT32, clamp_precision
from ._base import CoefficientPrior, gamma_draw, inverse_gamma_draw

__all__ = ["MGPS", "MGPSState", "Horseshoe", "HorseshoeState"]


class MGPSState(eqx.Module):
    phi: Float[Array, "k p"]
    delta: Float[Array, " k"]


class HorseshoeState(eqx.Module):
    lambda2: Float[Array, "k p"]
    xi: Float[Array, "k p"]
    delta: Float[Array, " k"]


class _OrderedShrinkage(CoefficientPrior):
    delta_1_shape: float = 2.0
    delta_1_rate: float = 1.0
    delta_2_shape: float = 3.0
    delta_2_rate: float = 1.0

    def _delta_hyper(self, k: int):
        shape = jnp.full((k,), self.delta_2_shape).at[0].set(self.delta_1_shape)
        rate = jnp.full((k,), self.delta_2_rate).at[0].set(self.delta_1_rate)
        return shape, rate

    def _init_delta(self, k: int):
        shape, rate = self._delta_hyper(k)
        return shape / rate

    def _prior_delta(self, key, k: int):
        shape, rate = self._delta_hyper(k)
        return gamma_draw(key, shape, rate)

    def _sample_delta(self, key, delta, local_prec, coef, tau):
        """delta_h ~ Gamma(a_h + p (k - h) / 2, b_h + sum_{l >= h} (prod_{m <= l, m != h} delta_m)
        * sum_j tau_j local_lj coef_lj^2 / 2), one h after another (h = 0..k-1)."""
        k, p = coef.shape
        shape, rate = self._delta_hyper(k)
        row_ss = jnp.sum(local_prec * coef**2 * tau[None, :], axis=1)
        keys = jax.random.split(key, k)
        rows = jnp.arange(k)

        def body(h, delta):
            others = jnp.cumprod(delta) / delta[h]
            ss = jnp.sum(jnp.where(rows >= h, others * row_ss, 0.0))
            new = gamma_draw(keys[h], shape[h] + 0.5 * p * (k - h).astype(shape.dtype), rate[h] + 0.5 * ss)
            if delta.dtype == jnp.float32:  # every cumulative product stays below PRECISION_MAX_FLOAT32
                largest = jnp.max(jnp.where(rows >= h, others, 0.0))
                new = jnp.minimum(new, PRECISION_MAX_FLOAT32 / largest)
            return delta.at[h].set(new)

        return lax.fori_loop(0, k, body, delta)


class MGPS(_OrderedShrinkage):
    """Bhattacharya-Dunson multiplicative gamma process with element-wise ARD (the default)."""

    nu: float = eqx.field(static=True, default=3.0, converter=float)  # static: a known shape draws faster

    def init(self, m: int, p: int) -> MGPSState:
        return MGPSState(phi=jnp.ones((m, p)), delta=self._init_delta(m))

    def sample_prior(self, key, m: int, p: int) -> MGPSState:
        k_phi, k_delta = jax.random.split(key)
        return MGPSState(
            phi=gamma_draw(k_phi, jnp.full((m, p), self.nu / 2), self.nu / 2),
            delta=self._prior_delta(k_delta, m),
        )

    def precision(self, state: MGPSState) -> Float[Array, "k p"]:
        return clamp_precision(state.phi * jnp.cumprod(state.delta)[:, None])

    def sample(self, key, state: MGPSState, coef, tau) -> MGPSState:
        """phi_hj ~ Gamma((nu+1)/2, (nu + tau_j prod(delta)_h coef_hj^2)/2), then the deltas."""
        k_phi, k_delta = jax.random.split(key)
        global_prec = jnp.cumprod(state.delta)[:, None]
        phi = gamma_draw(k_phi, (self.nu + 1) / 2, (self.nu + global_prec * tau[None, :] * coef**2) / 2)
        delta = self._sample_delta(k_delta, state.delta, phi, coef, tau)
        return MGPSState(phi=phi, delta=delta)


class Horseshoe(_OrderedShrinkage):
    """Element-wise horseshoe with the ordered multiplicative column shrinkage."""

    def init(self, m: int, p: int) -> HorseshoeState:
        return HorseshoeState(lambda2=jnp.ones((m, p)), xi=jnp.ones((m, p)), delta=self._init_delta(m))

    def sample_prior(self, key, m: int, p: int) -> HorseshoeState:
        k_xi, k_lambda, k_delta = jax.random.split(key, 3)
        xi = inverse_gamma_draw(k_xi, jnp.full((m, p), 0.5), 1.0)
        lambda2 = inverse_gamma_draw(k_lambda, 0.5, 1.0 / xi)
        return HorseshoeState(lambda2=lambda2, xi=xi, delta=self._prior_delta(k_delta, m))

    def precision(self, state: HorseshoeState) -> Float[Array, "k p"]:
        return clamp_precision(jnp.cumprod(state.delta)[:, None] / state.lambda2)

    def sample(self, key, state: HorseshoeState, coef, tau) -> HorseshoeState:
        """lambda2 ~ InvGamma(1, 1/xi + tau prod(delta) coef^2 / 2), xi ~ InvGamma(1, 1 + 1/lambda2),
        then the deltas."""
        k_lambda, k_xi, k_delta = jax.random.split(key, 3)
        global_prec = jnp.cumprod(state.delta)[:, None]
        lambda2 = inverse_gamma_draw(k_lambda, 1.0, 1.0 / state.xi + 0.5 * global_prec * tau[None, :] * coef**2)
        xi = inverse_gamma_draw(k_xi, 1.0, 1.0 + 1.0 / lambda2)
        delta = self._sample_delta(k_delta, state.delta, 1.0 / lambda2, coef, tau)
        return HorseshoeState(lambda2=lambda2, xi=xi, delta=delta)
