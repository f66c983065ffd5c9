"""The ``cholesky`` backend for any number of random effects (MegaLMM's 'general' sampler).

For R random effects with designs Z_m (n x r_m) and covariances K_m = L_m L_m' (L_m from the
eigendecomposition, so any PSD K_m works), a column y of latent traits at grid point g has

    y = W beta + sum_m Z_m L_m a_m + e,   a_m ~ N(0, h2_gm / tau I),   e ~ N(0, (1 - sum h2_g) / tau I),
    V_g = sum_m h2_gm Z_m K_m Z_m' + (1 - sum_m h2_gm) I.

Computed once, in float64, for every grid point g: the inverse Cholesky factor of V_g (for the
regressions and the h2 draw) and, with a = D_g^(1/2) c, D_g = diag(h2_g per column of [Z_m L_m]),
the inverse Cholesky factor of C_g = I + D_g^(1/2) (ZL)' (ZL) D_g^(1/2) / (1 - sum h2_g), the
tau-free precision of c (for the random-effect draw; an h2 of 0 gives a = 0 without dividing by
zero). Inverse factors turn every per-iteration solve into a batched matrix product over grid
points, which XLA runs far faster than batched triangular solves; both matrices are well
conditioned (V_g >= (1 - sum h2_g) I >= I / d, C_g >= I), so the inverses lose no accuracy.
Memory: G (n^2 + S^2) floats, S = sum_m r_m; ``memory_estimate`` says how much before allocating.
Effects are held as a = [a_1; ...; a_R] (S x c); ``to_levels`` gives U_m = L_m a_m.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._random import normal

__all__ = ["CholeskyRandomEffects", "cholesky_random_effects", "memory_estimate"]

# Per-column products gather each column's factor when the gathered copies stay below this many
# bytes (cost O(c m^2)); above it they are computed at every grid point and selected (O(G m^2 c)).
_GATHER_BYTES = 2**28


def _apply_per_column(
    factors: Float[Array, "G m m"], vectors: Float[Array, "c m"], h2_index: Int[Array, " c"], transpose: bool = False
) -> Float[Array, "c m"]:
    """factors[h2_index[j]] @ vectors[j] (or its transpose) for every column j."""
    c, m = vectors.shape
    if c * m * m * 8 <= _GATHER_BYTES:
        return jnp.einsum("cji,cj->ci" if transpose else "cij,cj->ci", factors[h2_index], vectors)
    every_grid_point = jnp.einsum("gji,cj->gci" if transpose else "gij,cj->gci", factors, vectors)
    return every_grid_point[h2_index, jnp.arange(c)]


class CholeskyRandomEffects(eqx.Module):
    whiten_V: Float[Array, "G n n"]  # inverse Cholesky factor of V_g (lower triangular)
    log_det_V: Float[Array, " G"]
    whiten_C: Float[Array, "G S S"]  # inverse Cholesky factor of C_g
    ZL: Float[Array, "n S"]
    L_blocks: Float[Array, "S S"]  # block-diagonal diag(L_1, ..., L_R)
    block_of_column: Int[Array, " S"]  # which random effect each column of ZL belongs to
    h2_grid: Float[Array, "G R"]
    sizes: tuple[int, ...] = eqx.field(static=True)

    @property
    def n(self) -> int:
        return self.ZL.shape[0]

    @property
    def r(self) -> int:
        return self.ZL.shape[1]

    def rotate(self, x):
        return x

    def unrotate(self, x):
        return x

    def regression_statistics(
        self, y: Float[Array, "n c"], W: Float[Array, "n q"], h2_index: Int[Array, " c"]
    ) -> tuple[Float[Array, "c q q"], Float[Array, "c q"], Float[Array, " c"]]:
        """W' V^-1 W, W' V^-1 y_j and y_j' V^-1 y_j for every column j at its grid point.

        W and y are whitened at every grid point (O(G n^2 (q + c)), batched matrix products);
        each column then takes the grid point it sits at.
        """
        W_white = jnp.einsum("gij,jq->giq", self.whiten_V, W)
        gram = jnp.einsum("gna,gnb->gab", W_white, W_white)
        y_white = _apply_per_column(self.whiten_V, y.T, h2_index)  # (c, n)
        Wy = jnp.einsum("cnq,cn->cq", W_white[h2_index], y_white)
        return gram[h2_index], Wy, jnp.sum(y_white**2, axis=1)

    def h2_log_likelihood(self, resid: Float[Array, "n c"], tau: Float[Array, " c"]) -> Float[Array, "c G"]:
        """log N(resid_j; 0, V_g / tau_j) for every column and grid point, up to a constant in g."""
        quad = jnp.sum(jnp.einsum("gij,jc->gic", self.whiten_V, resid) ** 2, axis=1)  # (G, c)
        return -0.5 * self.log_det_V[None, :] - 0.5 * tau[:, None] * quad.T

    def effect_prior_sd(self, h2_index: Int[Array, " c"], tau: Float[Array, " c"]) -> Float[Array, "S c"]:
        h2 = self.h2_grid[h2_index][:, self.block_of_column]  # (c, S)
        return jnp.sqrt(h2 / tau[:, None]).T

    def residual_proportion(self, h2_index: Int[Array, " c"]) -> Float[Array, " c"]:
        return 1.0 - jnp.sum(self.h2_grid[h2_index], axis=-1)

    def effect_on_rows(self, a: Float[Array, "S c"]) -> Float[Array, "n c"]:
        return self.ZL @ a

    def sample_effects(
        self, key: PRNGKeyArray, resid: Float[Array, "n c"], h2_index: Int[Array, " c"], tau: Float[Array, " c"]
    ) -> Float[Array, "S c"]:
        """a | resid ~ N(C^-1 D^(1/2) ZL' resid / (1 - sum h2), ...) through c = D^(-1/2) a:

            c | resid ~ N(C_g^-1 m, (tau C_g)^-1),  m = D_g^(1/2) ZL' resid / (1 - sum h2_g).
        """
        scale = jnp.sqrt(self.h2_grid[h2_index][:, self.block_of_column])  # (c, S)
        rhs = scale / (1.0 - jnp.sum(self.h2_grid[h2_index], axis=1))[:, None] * (self.ZL.T @ resid).T
        white = _apply_per_column(self.whiten_C, rhs, h2_index)
        white = white + normal(key, white.shape) / jnp.sqrt(tau)[:, None]
        c = _apply_per_column(self.whiten_C, white, h2_index, transpose=True)  # C_g^-T
        return (scale * c).T

    def to_levels(self, a: Float[Array, "S c"]) -> Float[Array, "S c"]:
        """Random effects on the levels of every K_m, stacked: [U_1; ...; U_R]."""
        return self.L_blocks @ a


def memory_estimate(n: int, sizes: tuple[int, ...], n_grid: int) -> int:
    """Bytes of the decompositions kept on the device: G (n^2 + S^2) + n S + S^2 float64 numbers."""
    S = sum(sizes)
    return 8 * (n_grid * (n * n + S * S) + n * S + S * S)


def cholesky_random_effects(Zs: list[np.ndarray], Ks: list[np.ndarray], h2_grid: np.ndarray) -> CholeskyRandomEffects:
    """Factorises V_g and C_g for every grid point, once, in float64 numpy."""
    n = Zs[0].shape[0]
    roots = []
    for K in Ks:
        eigenvalues, eigenvectors = np.linalg.eigh(K)
        roots.append(eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))[None, :])
    ZL = np.concatenate([Z @ L for Z, L in zip(Zs, roots)], axis=1)
    sizes = tuple(int(Z.shape[1]) for Z in Zs)
    block_of_column = np.repeat(np.arange(len(Zs)), sizes)
    covariances = [Z @ K @ Z.T for Z, K in zip(Zs, Ks)]
    ZLtZL = ZL.T @ ZL
    S = ZL.shape[1]
    n_grid = h2_grid.shape[0]
    whiten_V, whiten_C, log_det_V = np.empty((n_grid, n, n)), np.empty((n_grid, S, S)), np.empty(n_grid)
    for g, h2 in enumerate(h2_grid):  # filled in place: peak host memory stays near the final arrays
        V = (1.0 - h2.sum()) * np.eye(n)
        for weight, covariance in zip(h2, covariances):
            V += weight * covariance
        chol = np.linalg.cholesky(V)
        whiten_V[g] = scipy.linalg.solve_triangular(chol, np.eye(n), lower=True)
        log_det_V[g] = 2.0 * np.sum(np.log(np.diag(chol)))
        scale = np.sqrt(h2[block_of_column])
        C = np.eye(S) + (scale[:, None] * ZLtZL * scale[None, :]) / (1.0 - h2.sum())
        whiten_C[g] = scipy.linalg.solve_triangular(np.linalg.cholesky(C), np.eye(S), lower=True)
    L_blocks = np.zeros((S, S))
    start = 0
    for L in roots:
        size = L.shape[0]
        L_blocks[start : start + size, start : start + size] = L
        start += size
    return CholeskyRandomEffects(
        whiten_V=jnp.asarray(whiten_V),
        log_det_V=jnp.asarray(log_det_V),
        whiten_C=jnp.asarray(whiten_C),
        ZL=jnp.asarray(ZL),
        L_blocks=jnp.asarray(L_blocks),
        block_of_column=jnp.asarray(block_of_column),
        h2_grid=jnp.asarray(h2_grid),
        sizes=sizes,
    )
