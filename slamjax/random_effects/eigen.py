"""The ``eigen`` backend for one random effect (MegaLMM's 'fast' sampler).

With K = L L^T (L from the eigendecomposition of K, so any PSD K works) and the SVD
Z L = Q Sigma P^T (Q: n x n, P: r x r), the model for a column y of latent traits,

    y = W beta + Z u + e,   u ~ N(0, h2 / tau K),   e ~ N(0, (1 - h2) / tau I),

becomes, after rotating by Q^T and writing u = L P b,

    Q^T y = Q^T W beta + Sigma b + Q^T e,   b ~ N(0, h2 / tau I),

so every covariance V = h2 Z K Z^T + (1 - h2) I is diagonal, with entries h2 s_i + 1 - h2
(s = squared singular values, padded with zeros to n), and b has a diagonal conditional.
The sampler keeps responses, designs, factor scores and random effects in these coordinates;
``to_levels`` maps random effects back to the levels of K.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._random import normal

__all__ = ["EigenRandomEffect", "eigen_random_effect"]


class EigenRandomEffect(eqx.Module):
    """Fixed decompositions of one random effect, computed once in float64."""

    Q: Float[Array, "n n"]  # left singular vectors of Z L
    s: Float[Array, " n"]  # eigenvalues of Z K Z^T (squared singular values, zero padded)
    sigma: Float[Array, " r"]  # singular values, zero padded to r
    LP: Float[Array, "r r"]  # maps rotated effects b to effects on the levels of K: u = LP b

    @property
    def n(self) -> int:
        return self.Q.shape[0]

    @property
    def r(self) -> int:
        return self.sigma.shape[0]

    def rotate(self, x: Float[Array, "n c"]) -> Float[Array, "n c"]:
        return self.Q.T @ x

    def unrotate(self, x: Float[Array, "n c"]) -> Float[Array, "n c"]:
        return self.Q @ x

    def variances(self, h2: Float[Array, " G"]) -> Float[Array, "n G"]:
        """Diagonal of V_g = h2_g Z K Z^T + (1 - h2_g) I in rotated coordinates, for every grid point."""
        return h2[None, :] * self.s[:, None] + (1.0 - h2[None, :])

    def effect_on_rows(self, b: Float[Array, "r c"]) -> Float[Array, "n c"]:
        """Sigma b: the rotated contribution Q^T Z u of random effects given in rotated coordinates."""
        m = min(self.n, self.r)
        contribution = self.sigma[:m, None] * b[:m]
        return jnp.concatenate([contribution, jnp.zeros((self.n - m, b.shape[1]))], axis=0)

    def sample_effects(
        self,
        key: PRNGKeyArray,
        resid: Float[Array, "n c"],
        h2: Float[Array, " c"],
        tau: Float[Array, " c"],
    ) -> Float[Array, "r c"]:
        """b | resid ~ N(h2 sigma resid / (h2 sigma^2 + 1 - h2), h2 (1 - h2) / (tau (h2 sigma^2 + 1 - h2))).

        ``resid`` is the rotated residual Q^T (y - W beta). Written so that h2 = 0 gives b = 0
        without dividing by zero.
        """
        n, r = self.n, self.r
        if r <= n:
            resid_r = resid[:r]
        else:
            resid_r = jnp.concatenate([resid, jnp.zeros((r - n, resid.shape[1]))], axis=0)
        omega = self.sigma[:, None] ** 2
        denom = h2[None, :] * omega + (1.0 - h2[None, :])
        mean = h2[None, :] * self.sigma[:, None] * resid_r / denom
        sd = jnp.sqrt(h2[None, :] * (1.0 - h2[None, :]) / (tau[None, :] * denom))
        return mean + sd * normal(key, mean.shape)

    def to_levels(self, b: Float[Array, "r c"]) -> Float[Array, "r c"]:
        """Random effects on the levels of K (the rows of K), u = L P b."""
        return self.LP @ b


def eigen_random_effect(Z: np.ndarray, K: np.ndarray) -> EigenRandomEffect:
    """Decomposes Z (n x r) and K (r x r, symmetric PSD) once, in float64 numpy."""
    eigenvalues, eigenvectors = np.linalg.eigh(K)
    L = eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))[None, :]
    Q, sigma, Pt = np.linalg.svd(Z @ L, full_matrices=True)
    n, r = Z.shape
    s = np.zeros(n)
    s[: sigma.size] = sigma**2
    sigma_r = np.zeros(r)
    sigma_r[: sigma.size] = sigma
    return EigenRandomEffect(
        Q=jnp.asarray(Q), s=jnp.asarray(s), sigma=jnp.asarray(sigma_r), LP=jnp.asarray(L @ Pt.T)
    )


