"""The protocol every coefficient prior follows, and the shared Gamma helper.

A prior covers an (m, p) block of coefficients (rows: covariates or factors, columns: traits or
factors). Given the block's precision scale tau (p,), the prior precision of coefficient (i, j) is
``tau[j] * precision(state)[i, j]``; scaling by tau is what lets the regression step collapse tau.
A new prior (three-parameter beta, BayesC, ...) subclasses ``CoefficientPrior`` and plugs in
without touching the sampler.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from .._random import floating_dtype, is_small_half_integer, standard_gamma, standard_gamma_half_integer

__all__ = ["CoefficientPrior", "gamma_draw", "inverse_gamma_draw"]


def gamma_draw(key: PRNGKeyArray, shape: Float[Array, "..."], rate: Float[Array, "..."]) -> Float[Array, "..."]:
    """Draws from Gamma(shape, rate) (mean shape / rate), broadcasting shape and rate. A shape given
    as a Python number in {0.5, 1, ..., 4} is drawn without rejection (``standard_gamma_half_integer``).
    In the dtype of the arrays among shape and rate (float64 when both are Python numbers)."""
    dtype = floating_dtype(shape, rate)
    if is_small_half_integer(shape):
        rate = jnp.asarray(rate, dtype)
        return standard_gamma_half_integer(key, float(shape), rate.shape, dtype) / rate
    shape, rate = jnp.broadcast_arrays(jnp.asarray(shape, dtype), jnp.asarray(rate, dtype))
    return standard_gamma(key, shape) / rate


def inverse_gamma_draw(key: PRNGKeyArray, shape, scale) -> Float[Array, "..."]:
    """Draws from InvGamma(shape, scale) (density proportional to x^(-shape-1) exp(-scale/x))."""
    return 1.0 / gamma_draw(key, shape, scale)


class CoefficientPrior(eqx.Module):
    """A prior on an (m, p) coefficient block with precision tau_j * precision(state)."""

    @abc.abstractmethod
    def init(self, m: int, p: int) -> PyTree:
        """A deterministic starting state (prior means or modes)."""

    @abc.abstractmethod
    def sample_prior(self, key: PRNGKeyArray, m: int, p: int) -> PyTree:
        """A draw of the prior's own parameters from their prior."""

    @abc.abstractmethod
    def precision(self, state: PyTree) -> Float[Array, "m p"]:
        """The tau-free prior precision of each coefficient."""

    @abc.abstractmethod
    def sample(
        self, key: PRNGKeyArray, state: PyTree, coef: Float[Array, "m p"], tau: Float[Array, " p"]
    ) -> PyTree:
        """A draw of the prior's parameters from their full conditional given the coefficients."""
