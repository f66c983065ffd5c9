"""Priors on the marker effects of the factors, B_M (markers x factors).

Every prior is a mixture of normals for each effect, scaled by the factor's total precision tau_l
(tot_F_prec, as the priors of B_F; this is what lets the factor block draw tau_l with the effects'
prior term added to its Gamma, ``tau_terms``):

    B_M[j, l] | class c ~ N(0, 1 / (tau_l d[j, l, c])),   P(class c) = pi[j, l, c],

with d the tau-free class precisions of ``site_table``. The Gaussian scale mixtures have one class
whose precision depends on the effect's own latent scale (ARD, horseshoe, Bayesian lasso: a joint
draw of B_M given the scales is possible, ``markers.sampler``); the spike-and-slab priors (BayesC,
BayesR) have a point mass at 0 as class 0 (``spike``), so their effects are exactly 0 with
positive probability and their posterior inclusion probabilities are the share of draws in a
class other than 0.

Scales: an effect prior should not depend on how many markers there are. ``with_markers(m,
marker_variance)`` sets each prior's default scale from the data so that the markers together
explain, a priori, about ``h2`` (0.5) of a factor's variance (1 after the expansion is divided out).
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from .._errors import SlamjaxInputError
from .._random import normal
from ..priors._base import gamma_draw, inverse_gamma_draw
from ..priors.tpb import _gig

__all__ = ["MarkerPrior", "ARD", "Horseshoe", "BayesianLasso", "BayesC", "BayesR", "marker_prior"]

# the share of a factor's variance the markers explain a priori, for the default scales
PRIOR_MARKER_H2 = 0.5


class MarkerPrior(eqx.Module):
    """A prior on the (m, k) marker effects, a mixture of normals per effect (module docstring)."""

    spike: ClassVar[bool] = False  # class 0 is a point mass at 0
    n_classes: ClassVar[int] = 1

    @abc.abstractmethod
    def with_markers(self, m: int, marker_variance: float) -> "MarkerPrior":
        """This prior with its default scale set for m markers whose variances sum to
        ``marker_variance`` (a scale the user gave is kept)."""

    @abc.abstractmethod
    def init(self, m: int, k: int) -> PyTree:
        """A deterministic starting state."""

    @abc.abstractmethod
    def sample_prior(self, key: PRNGKeyArray, m: int, k: int) -> PyTree:
        """The prior's own parameters drawn from their prior."""

    @abc.abstractmethod
    def site_table(self, state: PyTree) -> tuple[Float[Array, "mm k C"], Float[Array, "mm k C"]]:
        """(tau-free class precisions d, log class probabilities log pi), each (m or 1, k, C); a
        spike's class 0 has precision inf."""

    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray, state: PyTree, effects: Float[Array, "m k"], classes: Int[Array, "m k"],
               tau: Float[Array, " k"]) -> PyTree:
        """The prior's parameters from their full conditional given the effects and classes."""

    def sample_effects(self, key: PRNGKeyArray, state: PyTree, m: int, k: int, tau: Float[Array, " k"]):
        """(effects, classes) drawn from the prior given its parameters (for Geweke tests)."""
        precision, log_pi = self.site_table(state)
        key_class, key_value = jax.random.split(key)
        logits = jnp.broadcast_to(log_pi, (m, k, self.n_classes))
        classes = jax.random.categorical(key_class, logits, axis=-1)
        d = _class_precision(precision, classes)
        value = normal(key_value, (m, k), tau.dtype) / jnp.sqrt(jnp.where(jnp.isinf(d), 1.0, d) * tau[None, :])
        return jnp.where(jnp.isinf(d), 0.0, value), classes

    def precision(self, state: PyTree) -> Float[Array, "m k"]:
        """The tau-free precision of each effect (scale mixtures only)."""
        precision, _ = self.site_table(state)
        return precision[..., 0]

    def tau_terms(self, state: PyTree, effects: Float[Array, "m k"], classes: Int[Array, "m k"]):
        """(shape, rate) the effects' prior adds to the Gamma conditional of tau_l: (number of
        non-spike effects / 2, sum_j d_jl B_M[j, l]^2 / 2)."""
        precision, _ = self.site_table(state)
        d = _class_precision(precision, classes)
        slab = ~jnp.isinf(d)
        return 0.5 * jnp.sum(slab, axis=0).astype(d.dtype), 0.5 * jnp.sum(jnp.where(slab, d * effects**2, 0.0), axis=0)


def _class_precision(precision, classes):
    """The tau-free precision of each effect's class: precision (m or 1, k, C) at classes (m, k)."""
    table = jnp.broadcast_to(precision, classes.shape + precision.shape[-1:])
    return jnp.take_along_axis(table, classes[..., None], axis=-1)[..., 0]


def _default_scale(scale, m, marker_variance, inclusion: float = 1.0):
    """The prior variance (tau-free) of one included effect so that the included markers explain
    PRIOR_MARKER_H2 of a factor's variance: h2 / (inclusion * sum of marker variances)."""
    if scale is not None:
        return float(scale)
    return PRIOR_MARKER_H2 / (inclusion * max(float(marker_variance), 1e-12))


class ARDState(eqx.Module):
    psi: Float[Array, "m k"]
    global_precision: Float[Array, " k"]


class ARD(MarkerPrior):
    """Element-wise Student-t effects with a global precision per factor (BayesA-like):

        B_M[j, l] ~ N(0, 1 / (tau_l phi_l psi_jl)),  psi_jl ~ Gamma(nu / 2, nu / 2),
        phi_l ~ Gamma(shape, (shape - 1) scale (nu - 2) / nu),

    so that the prior mean variance of an effect, E[1 / phi] E[1 / psi], is scale (shape > 1, nu > 2).
    """

    nu: float = eqx.field(static=True, default=4.0, converter=float)  # static: (nu + 1) / 2 draws without rejection
    shape: float = 2.0
    scale: float | None = None

    def with_markers(self, m, marker_variance):
        return eqx.tree_at(lambda p: p.scale, self, _default_scale(self.scale, m, marker_variance),
                           is_leaf=lambda x: x is None)

    def __check_init__(self):
        if not (self.shape > 1 and self.nu > 2):
            raise SlamjaxInputError(f"ARD: needs shape > 1 and nu > 2 (a finite prior variance), got {self.shape}, {self.nu}")

    @property
    def _rate(self):
        return (self.shape - 1) * self.scale * (self.nu - 2) / self.nu

    def init(self, m, k):
        return ARDState(psi=jnp.ones((m, k)), global_precision=jnp.full((k,), self.shape / self._rate))

    def sample_prior(self, key, m, k):
        k_psi, k_phi = jax.random.split(key)
        return ARDState(psi=gamma_draw(k_psi, jnp.full((m, k), self.nu / 2), self.nu / 2),
                        global_precision=gamma_draw(k_phi, jnp.full((k,), self.shape), self._rate))

    def site_table(self, state):
        return (state.global_precision[None, :] * state.psi)[..., None], jnp.zeros((1, 1, 1), state.psi.dtype)

    def sample(self, key, state, effects, classes, tau):
        """psi_jl ~ Gamma((nu + 1) / 2, (nu + tau_l phi_l b_jl^2) / 2), then
        phi_l ~ Gamma(shape + m / 2, rate + sum_j tau_l psi_jl b_jl^2 / 2)."""
        k_psi, k_phi = jax.random.split(key)
        scaled_sq = effects**2 * tau[None, :]
        psi = gamma_draw(k_psi, (self.nu + 1) / 2, (self.nu + state.global_precision[None, :] * scaled_sq) / 2)
        m = effects.shape[0]
        phi = gamma_draw(k_phi, self.shape + m / 2, self._rate + 0.5 * jnp.sum(psi * scaled_sq, axis=0))
        return ARDState(psi=psi, global_precision=phi)


class HorseshoeState(eqx.Module):
    lambda2: Float[Array, "m k"]
    nu: Float[Array, "m k"]
    tau2: Float[Array, " k"]  # the global scale^2 of each factor's effects
    xi: Float[Array, " k"]


class Horseshoe(MarkerPrior):
    """Horseshoe effects (Carvalho, Polson & Scott 2010) with a global scale per factor:

        B_M[j, l] ~ N(0, lambda_jl^2 t_l^2 / tau_l),  lambda_jl ~ C+(0, 1),  t_l ~ C+(0, scale^1/2),

    through the inverse-gamma auxiliaries of Makalic & Schmidt (2016). The default global scale is
    the ARD's effect variance times 0.01 (most markers near 0)."""

    scale: float | None = None

    def with_markers(self, m, marker_variance):
        scale = _default_scale(self.scale, m, marker_variance) * (0.01 if self.scale is None else 1.0)
        return eqx.tree_at(lambda p: p.scale, self, scale, is_leaf=lambda x: x is None)

    def init(self, m, k):
        return HorseshoeState(lambda2=jnp.ones((m, k)), nu=jnp.ones((m, k)), tau2=jnp.full((k,), self.scale),
                              xi=jnp.full((k,), self.scale))

    def sample_prior(self, key, m, k):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        nu = inverse_gamma_draw(k1, jnp.full((m, k), 0.5), 1.0)
        lambda2 = inverse_gamma_draw(k2, 0.5, 1.0 / nu)
        xi = inverse_gamma_draw(k3, jnp.full((k,), 0.5), 1.0 / self.scale)
        tau2 = inverse_gamma_draw(k4, 0.5, 1.0 / xi)
        return HorseshoeState(lambda2=lambda2, nu=nu, tau2=tau2, xi=xi)

    def site_table(self, state):
        return (1.0 / (state.lambda2 * state.tau2[None, :]))[..., None], jnp.zeros((1, 1, 1), state.lambda2.dtype)

    def sample(self, key, state, effects, classes, tau):
        """lambda2_jl ~ IG(1, 1/nu_jl + tau_l b_jl^2 / (2 t2_l)), nu_jl ~ IG(1, 1 + 1/lambda2_jl),
        t2_l ~ IG((m + 1) / 2, 1/xi_l + sum_j tau_l b_jl^2 / (2 lambda2_jl)), xi_l ~ IG(1, 1/scale + 1/t2_l)."""
        k1, k2, k3, k4 = jax.random.split(key, 4)
        scaled_sq = effects**2 * tau[None, :]
        lambda2 = inverse_gamma_draw(k1, 1.0, 1.0 / state.nu + scaled_sq / (2 * state.tau2[None, :]))
        nu = inverse_gamma_draw(k2, 1.0, 1.0 + 1.0 / lambda2)
        m = effects.shape[0]
        tau2 = inverse_gamma_draw(k3, (m + 1) / 2, 1.0 / state.xi + 0.5 * jnp.sum(scaled_sq / lambda2, axis=0))
        xi = inverse_gamma_draw(k4, 1.0, 1.0 / self.scale + 1.0 / tau2)
        return HorseshoeState(lambda2=lambda2, nu=nu, tau2=tau2, xi=xi)


class LassoState(eqx.Module):
    psi: Float[Array, "m k"]  # each effect's variance (tau-free)
    lambda2: Float[Array, " k"]


class BayesianLasso(MarkerPrior):
    """The Bayesian lasso (Park & Casella 2008), one penalty per factor:

        B_M[j, l] ~ N(0, psi_jl / tau_l),  psi_jl ~ Exp(lambda2_l / 2),  lambda2_l ~ Gamma(shape, rate),

    i.e. Laplace effects with rate sqrt(tau_l lambda2_l). The default rate makes the prior mean of
    psi, E[2 / lambda2] = 2 rate / (shape - 1), the ARD's effect variance."""

    shape: float = 2.0
    rate: float | None = None

    def __check_init__(self):
        if not self.shape > 1 and self.rate is None:
            raise SlamjaxInputError(f"BayesianLasso: the default rate needs shape > 1 (a finite prior variance), got {self.shape}")

    def with_markers(self, m, marker_variance):
        rate = self.rate if self.rate is not None else (self.shape - 1) * _default_scale(None, m, marker_variance) / 2
        return eqx.tree_at(lambda p: p.rate, self, float(rate), is_leaf=lambda x: x is None)

    def init(self, m, k):
        lambda2 = jnp.full((k,), self.shape / self.rate)
        return LassoState(psi=jnp.broadcast_to(2.0 / lambda2, (m, k)), lambda2=lambda2)

    def sample_prior(self, key, m, k):
        k1, k2 = jax.random.split(key)
        lambda2 = gamma_draw(k1, jnp.full((k,), self.shape), self.rate)
        psi = gamma_draw(k2, jnp.ones((m, k)), lambda2[None, :] / 2)
        return LassoState(psi=psi, lambda2=lambda2)

    def site_table(self, state):
        return (1.0 / state.psi)[..., None], jnp.zeros((1, 1, 1), state.psi.dtype)

    def sample(self, key, state, effects, classes, tau):
        """psi_jl ~ GIG(1/2, tau_l b_jl^2, lambda2_l), then lambda2_l ~ Gamma(shape + m, rate + sum_j psi_jl / 2)."""
        k1, k2 = jax.random.split(key)
        psi = _gig(k1, 0.5, effects**2 * tau[None, :], state.lambda2[None, :])
        m = effects.shape[0]
        lambda2 = gamma_draw(k2, self.shape + m, self.rate + 0.5 * jnp.sum(psi, axis=0))
        return LassoState(psi=psi, lambda2=lambda2)


class MixtureState(eqx.Module):
    pi: Float[Array, "k C"]  # class probabilities per factor
    variance: Float[Array, " k"]  # the slab's (tau-free) variance scale per factor


class _SpikeMixture(MarkerPrior):
    """Shared by BayesC and BayesR: class 0 a spike at 0, class c > 0 N(0, gamma_c sigma2_l / tau_l),
    sigma2_l ~ InvGamma(nu / 2, nu scale / 2), pi_l ~ Dirichlet(alpha)."""

    spike: ClassVar[bool] = True

    @property
    def _gammas(self) -> tuple[float, ...]:
        raise NotImplementedError

    @property
    def _alpha(self) -> tuple[float, ...]:
        raise NotImplementedError

    def init(self, m, k):
        alpha = jnp.asarray(self._alpha)
        return MixtureState(pi=jnp.broadcast_to(alpha / alpha.sum(), (k, len(alpha))),
                            variance=jnp.full((k,), self.scale))

    def sample_prior(self, key, m, k):
        k1, k2 = jax.random.split(key)
        return MixtureState(pi=_dirichlet(k1, jnp.broadcast_to(jnp.asarray(self._alpha), (k, self.n_classes))),
                            variance=inverse_gamma_draw(k2, jnp.full((k,), self.nu / 2), self.nu * self.scale / 2))

    def site_table(self, state):
        gammas = jnp.asarray(self._gammas, state.variance.dtype)
        precision = jnp.where(gammas > 0, 1.0 / (jnp.where(gammas > 0, gammas, 1.0)[None, :] * state.variance[:, None]), jnp.inf)
        return precision[None], jnp.log(state.pi)[None]

    def sample(self, key, state, effects, classes, tau):
        """pi_l ~ Dirichlet(alpha + class counts), sigma2_l ~ InvGamma(nu/2 + n_slab/2,
        nu scale/2 + sum_{j in slab} tau_l b_jl^2 / (2 gamma_c(j)))."""
        k1, k2 = jax.random.split(key)
        dtype = state.variance.dtype
        counts = jnp.sum(jax.nn.one_hot(classes, self.n_classes, dtype=dtype), axis=0)  # (k, C)
        pi = _dirichlet(k1, jnp.asarray(self._alpha, dtype)[None, :] + counts)
        gammas = jnp.asarray(self._gammas, dtype)
        g = gammas[classes]
        slab = g > 0
        weighted = jnp.where(slab, effects**2 * tau[None, :] / jnp.where(slab, g, 1.0), 0.0)
        variance = inverse_gamma_draw(
            k2, self.nu / 2 + 0.5 * jnp.sum(slab, axis=0).astype(dtype),
            self.nu * self.scale / 2 + 0.5 * jnp.sum(weighted, axis=0)
        )
        return MixtureState(pi=pi, variance=variance)


def _dirichlet(key, alpha):
    g = gamma_draw(key, alpha, 1.0)
    return g / jnp.sum(g, axis=-1, keepdims=True)


class BayesC(_SpikeMixture):
    """Spike and slab (BayesC, Habier et al. 2011) per factor, for mapping:

        B_M[j, l] = 0 with probability 1 - pi_l, else N(0, sigma2_l / tau_l),
        pi_l ~ Beta(a, b),  sigma2_l ~ InvGamma(nu / 2, nu scale / 2).

    The default scale: the included markers (a share a / (a + b) of all) explain half a factor's
    variance a priori. Posterior inclusion probabilities: the share of draws with B_M[j, l] != 0."""

    a: float = 1.0
    b: float = 1.0
    nu: float = 4.0
    scale: float | None = None
    n_classes: ClassVar[int] = 2

    def __check_init__(self):
        if not (self.a > 0 and self.b > 0):
            raise SlamjaxInputError(f"BayesC: a and b (the Beta prior of the inclusion probability) must be > 0, got {self.a}, {self.b}")

    @property
    def _gammas(self):
        return (0.0, 1.0)

    @property
    def _alpha(self):
        return (self.b, self.a)

    def with_markers(self, m, marker_variance):
        scale = _default_scale(self.scale, m, marker_variance, inclusion=self.a / (self.a + self.b))
        return eqx.tree_at(lambda p: p.scale, self, scale, is_leaf=lambda x: x is None)


class BayesR(_SpikeMixture):
    """A mixture of a spike and normals of increasing variance (BayesR, Erbe et al. 2012):

        B_M[j, l] ~ sum_c pi_lc N(0, gamma_c sigma2_l / tau_l),  gamma = (0, 1e-4, 1e-3, 1e-2) by default,
        pi_l ~ Dirichlet(alpha),  sigma2_l ~ InvGamma(nu / 2, nu scale / 2)  (scale 1: a factor's variance).
    """

    gammas: tuple[float, ...] = eqx.field(static=True, default=(0.0, 1e-4, 1e-3, 1e-2))
    alpha: tuple[float, ...] | None = eqx.field(static=True, default=None)
    nu: float = 4.0
    scale: float | None = None

    def __check_init__(self):
        if len(self.gammas) < 2 or self.gammas[0] != 0 or any(g <= 0 for g in self.gammas[1:]):
            raise SlamjaxInputError(f"BayesR: gammas must start with 0 (the spike) and be > 0 after, got {self.gammas}")
        if self.alpha is not None and (len(self.alpha) != len(self.gammas) or any(a <= 0 for a in self.alpha)):
            raise SlamjaxInputError("BayesR: alpha must give one positive Dirichlet weight per class of gammas")

    @property
    def n_classes(self) -> int:  # type: ignore[override]
        return len(self.gammas)

    @property
    def _gammas(self):
        return tuple(float(g) for g in self.gammas)

    @property
    def _alpha(self):
        return tuple(self.alpha) if self.alpha is not None else (1.0,) * len(self.gammas)

    def with_markers(self, m, marker_variance):
        return eqx.tree_at(lambda p: p.scale, self, 1.0 if self.scale is None else float(self.scale),
                           is_leaf=lambda x: x is None)


_BY_NAME = {"ard": ARD, "horseshoe": Horseshoe, "lasso": BayesianLasso, "bayesc": BayesC, "bayesr": BayesR}


def marker_prior(value) -> MarkerPrior:
    """A marker prior from its name ("ard", "horseshoe", "lasso", "bayesc", "bayesr") or object."""
    if isinstance(value, MarkerPrior):
        return value
    if isinstance(value, str) and value.lower() in _BY_NAME:
        return _BY_NAME[value.lower()]()
    raise SlamjaxInputError(
        f"marker_prior: must be one of {sorted(_BY_NAME)} or a prior such as sj.markers.BayesC(a=1, b=9), got {value!r}"
    )
