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

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._dtype import float64_sum
from .._random import normal
from ._grid_terms import GridBackend, log_likelihood_on_grid

__all__ = ["EigenRandomEffect", "eigen_random_effect"]


class EigenRandomEffect(GridBackend):
    """Fixed decompositions of one random effect, computed once in float64."""

    Q: Float[Array, "n n"]  # left singular vectors of Z L
    s: Float[Array, " n"]  # eigenvalues of Z K Z^T (squared singular values, zero padded)
    sigma: Float[Array, " r"]  # singular values, zero padded to r
    LP: Float[Array, "r r"]  # maps rotated effects b to effects on the levels of K: u = LP b
    h2_grid: Float[Array, "G 1"]

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

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.r,)

    def variances(self) -> Float[Array, "n G"]:
        """Diagonal of V_g = h2_g Z K Z^T + (1 - h2_g) I in rotated coordinates, for every grid point."""
        h2 = self.h2_grid[:, 0]
        return h2[None, :] * self.s[:, None] + (1.0 - h2[None, :])

    def regression_statistics(
        self, y: Float[Array, "n c"], W: Float[Array, "n q"], h2_index: Int[Array, " c"]
    ) -> tuple[Float[Array, "c q q"], Float[Array, "c q"], Float[Array, " c"]]:
        """W' V^-1 W, W' V^-1 y_j and y_j' V^-1 y_j for every column j at its grid point.

        W' V_g^-1 W is formed once per grid point (O(G n q^2)) and gathered per column.
        """
        inverse_variances = 1.0 / self.variances()
        y_weighted = y * inverse_variances[:, h2_index]
        gram = jnp.einsum("ng,na,nb->gab", inverse_variances, W, W)
        return gram[h2_index], (W.T @ y_weighted).T, jnp.sum(y * y_weighted, axis=0)

    def regression_statistics_grid(
        self, y: Float[Array, "n c"], W: Float[Array, "n q"]
    ) -> tuple[Float[Array, "G q q"], Float[Array, "G c q"], Float[Array, "G c"]]:
        """W' V_g^-1 W, W' V_g^-1 y_j and y_j' V_g^-1 y_j at every grid point g (O(G n q c))."""
        inverse_variances = 1.0 / self.variances()  # (n, G)
        n, q = W.shape
        G = inverse_variances.shape[1]
        weighted_W = inverse_variances.T[:, :, None] * W[None]  # (G, n, q)
        gram = jnp.einsum("gna,nb->gab", weighted_W, W)
        Wy = (weighted_W.transpose(0, 2, 1).reshape(G * q, n) @ y).reshape(G, q, y.shape[1]).transpose(0, 2, 1)
        return gram, Wy, inverse_variances.T @ y**2

    def quadratic_forms(self, E: Float[Array, "n k"], h2_index: Int[Array, " k"]) -> Float[Array, "k k k"]:
        """E' V_g^-1 E at the grid point g = h2_index[m] of every column m (stacked on the first axis)."""
        return jnp.einsum("na,nb,nm->mab", E, E, 1.0 / self.variances()[:, h2_index])

    @property
    def log_det_V(self) -> Float[Array, " G"]:
        """log |V_g| of every grid point: a sum over the n rows, accumulated in float64 in a float32
        run (it decides the h2 draws; ``_dtype.float64_sum``)."""
        return float64_sum(jnp.log(self.variances()), axis=0)

    def h2_log_likelihood(self, resid: Float[Array, "n c"], tau: Float[Array, " c"]) -> Float[Array, "c G"]:
        """log N(resid_j; 0, V_g / tau_j) for every column and grid point, up to a constant in g."""
        quadratic = (resid**2).T @ (1.0 / self.variances())
        return log_likelihood_on_grid(self.log_det_V, quadratic, tau)

    @property
    def block_of_column(self) -> Int[Array, " r"]:
        """Every rotated effect belongs to the one random effect."""
        return jnp.zeros(self.r, dtype=jnp.int32)

    def effect_on_rows(self, b: Float[Array, "r c"]) -> Float[Array, "n c"]:
        """Sigma b: the rotated contribution Q^T Z u of random effects given in rotated coordinates."""
        return sigma_times(self.sigma, self.n, b, self.n)

    def sample_effects(
        self,
        key: PRNGKeyArray,
        resid: Float[Array, "n c"],
        h2_index: Int[Array, " c"],
        tau: Float[Array, " c"],
    ) -> Float[Array, "r c"]:
        """b | resid ~ N(h2 sigma resid / (h2 sigma^2 + 1 - h2), h2 (1 - h2) / (tau (h2 sigma^2 + 1 - h2))).

        ``resid`` is the rotated residual Q^T (y - W beta). Written so that h2 = 0 gives b = 0
        without dividing by zero.
        """
        n, r = self.n, self.r
        h2 = self.h2_grid[h2_index, 0]
        if r <= n:
            resid_r = resid[:r]
        else:
            resid_r = jnp.concatenate([resid, jnp.zeros((r - n, resid.shape[1]), resid.dtype)], axis=0)
        omega = self.sigma[:, None] ** 2
        denom = h2[None, :] * omega + (1.0 - h2[None, :])
        mean = h2[None, :] * self.sigma[:, None] * resid_r / denom
        sd = jnp.sqrt(h2[None, :] * (1.0 - h2[None, :]) / (tau[None, :] * denom))
        return mean + sd * normal(key, mean.shape, mean.dtype)

    def to_levels(self, b: Float[Array, "r c"]) -> Float[Array, "r c"]:
        """Random effects on the levels of K (the rows of K), u = L P b."""
        return self.LP @ b


def sigma_times(sigma: Float[Array, " r"], n: int, x: Float[Array, "m c"], rows: int) -> Float[Array, "rows c"]:
    """Sigma x (rows = n, x: (r, c)) or Sigma' x (rows = r, x: (n, c)) for the n x r rectangular
    diagonal matrix Sigma of the singular values ``sigma`` (zero padded to r)."""
    m = min(n, sigma.shape[0])
    top = sigma[:m, None] * x[:m]
    return jnp.concatenate([top, jnp.zeros((rows - m, x.shape[1]), top.dtype)], axis=0)


def covariance_root(K: np.ndarray) -> np.ndarray:
    """L with K = L L' from the eigendecomposition (negative rounding-error eigenvalues clipped)."""
    eigenvalues, eigenvectors = np.linalg.eigh(K)
    return eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))[None, :]


def eigen_random_effect(
    Z: np.ndarray, K: np.ndarray | None, h2_grid: np.ndarray, L: np.ndarray | None = None
) -> tuple[EigenRandomEffect, np.ndarray]:
    """Decomposes Z (n x r) and K (r x r, symmetric PSD; or its root L) once, in float64 numpy.

    Returns the backend and P (r x r), the right singular vectors of Z L: effects in these
    coordinates are b = P' L^+ u, so two decompositions with the same L relate by P_1' P_2.
    """
    if L is None:
        L = covariance_root(K)
    Q, s, sigma, Pt = singular_decomposition(Z @ L)
    backend = EigenRandomEffect(
        Q=jnp.asarray(Q), s=jnp.asarray(s), sigma=jnp.asarray(sigma), LP=jnp.asarray(L @ Pt.T),
        h2_grid=jnp.asarray(h2_grid),
    )
    return backend, Pt.T


def singular_decomposition(ZL: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The full SVD ZL = Q Sigma P' of an n x r matrix, as (Q (n, n), s (n), sigma (r), P' (r, r)):
    s the squared and sigma the plain singular values, both zero padded."""
    Q, singular_values, Pt = np.linalg.svd(ZL, full_matrices=True)
    n, r = ZL.shape
    s = np.zeros(n)
    s[: singular_values.size] = singular_values**2
    sigma = np.zeros(r)
    sigma[: singular_values.size] = singular_values
    return Q, s, sigma, Pt
