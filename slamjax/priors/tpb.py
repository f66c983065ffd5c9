"""The three-parameter beta (TPB) prior on the loadings, with the ordered column shrinkage.

Armagan, Dunson & Clyde (2011), "Generalized beta mixtures of Gaussians", as a normal scale mixture:
    Lambda_hj | psi_hj ~ N(0, psi_hj / (tau_j prod_{l <= h} delta_l))
    psi_hj | zeta_hj ~ Gamma(a, zeta_hj),  zeta_hj | phi ~ Gamma(b, phi)     (shape, rate)
    phi | omega ~ Gamma(1/2, omega),  omega ~ Gamma(1/2, 1)
so that psi_hj | phi = phi * BetaPrime(a, b) (the TPB(a, b, phi) law) and phi itself is
BetaPrime(1/2, 1/2): sqrt(phi) ~ C+(0, 1). a = b = 1/2 is the horseshoe, a = 1, b = 1/2 the
Strawderman-Berger prior; small a puts more mass at zero, small b makes the tails heavier. The
column shrinkage delta is the multiplicative gamma process shared with MGPS and Horseshoe.

Full conditionals (the local precision of coefficient (h, j) is 1 / psi_hj):
    psi_hj  ~ GIG(a - 1/2, chi = tau_j prod(delta)_h Lambda_hj^2, psi = 2 zeta_hj)
    zeta_hj ~ Gamma(a + b, psi_hj + phi)
    phi     ~ Gamma(k p b + 1/2, sum zeta + omega)
    omega   ~ Gamma(1, phi + 1)
    delta   as in MGPS with local precision 1 / psi.
GIG(lam, chi, psi) has density proportional to x^(lam - 1) exp(-(chi / x + psi x) / 2).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._dtype import clamp_precision
from .._random import floating_dtype, rejection_sample, uniform
from ._base import gamma_draw
from .mgps import _OrderedShrinkage

__all__ = ["TPB", "TPBState"]


def _log_density_core(x, alpha, lam):
    """psi(x) = -alpha (cosh x - 1) - lam (e^x - x - 1): the log density of log GIG, shifted so its
    maximum psi(0) = 0 (Devroye 2014). alpha = 0 (chi = 0: a Gamma) is allowed."""
    cosh_m1 = 2.0 * jnp.sinh(0.5 * x) ** 2
    alpha_term = jnp.where(alpha > 0, alpha * cosh_m1, 0.0)  # avoids 0 * inf when cosh overflows
    return -alpha_term - lam * (jnp.expm1(x) - x)


def _log_density_core_slope(x, alpha, lam):
    return -jnp.where(alpha > 0, alpha * jnp.sinh(x), 0.0) - lam * jnp.expm1(x)


def _gig(key: PRNGKeyArray, lam, chi, psi) -> Float[Array, "..."]:
    """Draws from GIG(lam, chi, psi), density proportional to x^(lam-1) exp(-(chi / x + psi x) / 2).

    Devroye's (2014) exact rejection sampler on the log scale, with an envelope that is flat around
    the mode and exponential (tangent to the concave log density) in both tails; its acceptance
    probability is bounded away from zero for all parameters. Vectorised: every round proposes for
    all elements and keeps the first acceptance of each. lam, chi and psi broadcast together.

    lam < 0 goes through 1 / GIG(-lam, psi, chi). chi = 0 with lam > 0 is the Gamma(lam, psi / 2)
    limit (and psi = 0 with lam < 0 the InvGamma(-lam, chi / 2) limit), drawn exactly. The improper
    cases (chi = 0 with lam <= 0, psi = 0 with lam >= 0) are regularised by flooring the zero
    parameter at the smallest normal number of the dtype, so the result stays finite and positive. Non-finite
    parameters give NaN.
    """
    dtype = floating_dtype(lam, chi, psi)
    lam, chi, psi = jnp.broadcast_arrays(*(jnp.asarray(v, dtype) for v in (lam, chi, psi)))
    shape, tiny = lam.shape, jnp.finfo(dtype).tiny
    flip = lam < 0
    lam_c = jnp.abs(lam)
    # canonical form lam_c >= 0: chi_c may be 0 when lam_c > 0, psi_c must be positive
    chi_c = jnp.where(flip, psi, chi)
    psi_c = jnp.maximum(jnp.where(flip, chi, psi), tiny)
    chi_c = jnp.where(lam_c > 0, jnp.maximum(chi_c, 0.0), jnp.maximum(chi_c, tiny))
    omega = jnp.sqrt(chi_c) * jnp.sqrt(psi_c)
    root = jnp.hypot(lam_c, omega)
    alpha = omega * (omega / (root + lam_c))  # = sqrt(omega^2 + lam^2) - lam without cancellation
    # log X = log((lam + sqrt(lam^2 + omega^2)) / psi) + Y, Y with log density _log_density_core
    log_scale = jnp.log(lam_c + root) - jnp.log(psi_c)

    def core(x):
        return _log_density_core(x, alpha, lam_c)

    def tail_point(value, large, small):
        return jnp.where(value > 2.0, large, jnp.where(value < 0.5, small, 1.0))

    safe = lambda v: jnp.where(v > 0, v, 1.0)  # noqa: E731
    t = tail_point(-core(1.0), jnp.sqrt(2.0 / safe(alpha + lam_c)), jnp.log(4.0 / safe(alpha + 2.0 * lam_c)))
    # log(1 + 1/alpha + sqrt(1/alpha^2 + 2/alpha)) without overflow; inf when alpha = 0
    s_alpha = jnp.where(
        alpha > 0, jnp.log(alpha + 1.0 + jnp.sqrt(1.0 + 2.0 * alpha)) - jnp.log(safe(alpha)), jnp.inf
    )
    s_lam = jnp.where(lam_c > 0, 1.0 / safe(lam_c), jnp.inf)
    s = tail_point(
        -core(-1.0), jnp.sqrt(4.0 / safe(alpha * jnp.cosh(1.0) + lam_c)), jnp.minimum(s_lam, s_alpha)
    )
    eta, zeta = -core(t), -_log_density_core_slope(t, alpha, lam_c)
    theta, xi = -core(-s), _log_density_core_slope(-s, alpha, lam_c)
    p_tail, r_tail = 1.0 / xi, 1.0 / zeta
    t_flat = t - r_tail * eta  # the flat part of the envelope is [-s_flat, t_flat], containing 0
    s_flat = s - p_tail * theta
    q_flat = t_flat + s_flat
    total = p_tail + q_flat + r_tail

    def propose(round_key):
        k_u, k_v, k_w = jax.random.split(round_key, 3)
        u = uniform(k_u, shape, dtype) * total
        v = uniform(k_v, shape, dtype)
        log_v = jnp.log(v)
        log_w = jnp.log(uniform(k_w, shape, dtype))
        flat = u < q_flat
        right = ~flat & (u < q_flat + r_tail)
        y = jnp.where(flat, -s_flat + q_flat * v, jnp.where(right, t_flat - r_tail * log_v, -s_flat + p_tail * log_v))
        log_envelope = jnp.where(
            flat, 0.0, jnp.where(right, -eta - zeta * (y - t), -theta + xi * (y + s))
        )
        accept = log_w + log_envelope <= core(y)
        return accept, y

    # non-finite parameters (NaN, inf) would never accept: they come back NaN instead of looping forever
    invalid = ~(jnp.isfinite(total) & jnp.isfinite(t_flat) & jnp.isfinite(s_flat) & jnp.isfinite(log_scale))
    y = rejection_sample(key, propose, jnp.where(invalid, jnp.nan, jnp.zeros(shape, dtype)), invalid)
    log_x = log_scale + y
    return jnp.clip(jnp.exp(jnp.where(flip, -log_x, log_x)), tiny, jnp.finfo(dtype).max)


class TPBState(eqx.Module):
    psi: Float[Array, "k p"]
    zeta: Float[Array, "k p"]
    phi: Float[Array, ""]
    omega: Float[Array, ""]
    delta: Float[Array, " k"]


class TPB(_OrderedShrinkage):
    """Element-wise three-parameter beta prior with the ordered multiplicative column shrinkage.

    a (> 0) and b (> 0) are the TPB shapes; a = b = 1/2 (the default) gives horseshoe local scales.
    """

    a: float = 0.5
    b: float = 0.5

    def init(self, m: int, p: int) -> TPBState:
        return TPBState(
            psi=jnp.ones((m, p)), zeta=jnp.ones((m, p)), phi=jnp.ones(()), omega=jnp.ones(()),
            delta=self._init_delta(m),
        )

    def sample_prior(self, key: PRNGKeyArray, m: int, p: int) -> TPBState:
        k_omega, k_phi, k_zeta, k_psi, k_delta = jax.random.split(key, 5)
        omega = gamma_draw(k_omega, 0.5, 1.0)
        phi = gamma_draw(k_phi, 0.5, omega)
        zeta = gamma_draw(k_zeta, jnp.full((m, p), self.b), phi)
        psi = gamma_draw(k_psi, self.a, zeta)
        return TPBState(psi=psi, zeta=zeta, phi=phi, omega=omega, delta=self._prior_delta(k_delta, m))

    def precision(self, state: TPBState) -> Float[Array, "k p"]:
        return clamp_precision(jnp.cumprod(state.delta)[:, None] / state.psi)

    def sample(self, key, state: TPBState, coef, tau) -> TPBState:
        """psi ~ GIG(a - 1/2, tau prod(delta) coef^2, 2 zeta), zeta ~ Gamma(a + b, psi + phi),
        phi ~ Gamma(k p b + 1/2, sum zeta + omega), omega ~ Gamma(1, phi + 1), then the deltas."""
        k_psi, k_zeta, k_phi, k_omega, k_delta = jax.random.split(key, 5)
        global_prec = jnp.cumprod(state.delta)[:, None]
        psi = _gig(k_psi, self.a - 0.5, global_prec * tau[None, :] * coef**2, 2.0 * state.zeta)
        zeta = gamma_draw(k_zeta, self.a + self.b, psi + state.phi)
        phi = gamma_draw(k_phi, coef.size * self.b + 0.5, jnp.sum(zeta) + state.omega)
        omega = gamma_draw(k_omega, 1.0, phi + 1.0)
        delta = self._sample_delta(k_delta, state.delta, 1.0 / psi, coef, tau)
        return TPBState(psi=psi, zeta=zeta, phi=phi, omega=omega, delta=delta)
