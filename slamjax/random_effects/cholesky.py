"""The ``cholesky`` backend for any number of random effects (MegaLMM's 'general' sampler).

For R random effects with designs Z_m (n x r_m) and covariances K_m = L_m L_m' (L_m from the
eigendecomposition, so any PSD K_m works), a column y of latent traits at grid point g has

    y = W beta + sum_m Z_m L_m a_m + e,   a_m ~ N(0, h2_gm / tau I),   e ~ N(0, (1 - sum h2_g) / tau I),
    V_g = sum_m h2_gm Z_m K_m Z_m' + (1 - sum_m h2_gm) I.

Computed once, in float64, for every grid point g: the Cholesky factor of V_g (for the
regressions and the h2 draw) and, with a = D_g^(1/2) c, D_g = diag(h2_g per column of [Z_m L_m]),
the Cholesky factor of C_g = I + D_g^(1/2) (ZL)' (ZL) D_g^(1/2) / (1 - sum h2_g), the tau-free
precision of c (for the random-effect draw; an h2 of 0 gives a = 0 without dividing by zero).
Memory: G (n^2 + S^2) floats, S = sum_m r_m; ``memory_estimate`` says how much before allocating.
Effects are held as a = [a_1; ...; a_R] (S x c); ``to_levels`` gives U_m = L_m a_m.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._random import normal

__all__ = ["CholeskyRandomEffects", "cholesky_random_effects", "memory_estimate"]


class CholeskyRandomEffects(eqx.Module):
    chol_V: Float[Array, "G n n"]
    log_det_V: Float[Array, " G"]
    chol_C: Float[Array, "G S S"]
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

        W is whitened once per grid point (O(G n^2 q)); each column is whitened with its own
        factor (O(c n^2)), one column at a time so memory stays O(G n q + n^2).
        """
        W_white = jax.vmap(lambda chol: solve_triangular(chol, W, lower=True))(self.chol_V)
        gram = jnp.einsum("gna,gnb->gab", W_white, W_white)

        def column(args):
            g, y_column = args
            y_white = solve_triangular(self.chol_V[g], y_column, lower=True)
            return W_white[g].T @ y_white, y_white @ y_white

        Wy, yy = jax.lax.map(column, (h2_index, y.T))
        return gram[h2_index], Wy, yy

    def h2_log_likelihood(self, resid: Float[Array, "n c"], tau: Float[Array, " c"]) -> Float[Array, "c G"]:
        """log N(resid_j; 0, V_g / tau_j) for every column and grid point, up to a constant in g."""

        def quadratic(chol):
            white = solve_triangular(chol, resid, lower=True)
            return jnp.sum(white**2, axis=0)

        quad = jax.lax.map(quadratic, self.chol_V)  # (G, c)
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
        projected = (self.ZL.T @ resid).T  # (c, S)
        noise = normal(key, projected.shape)

        def column(args):
            g, projected_j, noise_j, tau_j = args
            scale = jnp.sqrt(self.h2_grid[g][self.block_of_column])
            rhs = scale * projected_j / (1.0 - jnp.sum(self.h2_grid[g]))
            chol = self.chol_C[g]
            white = solve_triangular(chol, rhs, lower=True)
            c = solve_triangular(chol.T, white + noise_j / jnp.sqrt(tau_j), lower=False)
            return scale * c

        return jax.lax.map(column, (h2_index, projected, noise, tau)).T

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
    chol_V, log_det_V, chol_C = [], [], []
    for h2 in h2_grid:
        V = (1.0 - h2.sum()) * np.eye(n)
        for weight, covariance in zip(h2, covariances):
            V += weight * covariance
        chol = np.linalg.cholesky(V)
        chol_V.append(chol)
        log_det_V.append(2.0 * np.sum(np.log(np.diag(chol))))
        scale = np.sqrt(h2[block_of_column])
        C = np.eye(S) + (scale[:, None] * ZLtZL * scale[None, :]) / (1.0 - h2.sum())
        chol_C.append(np.linalg.cholesky(C))
    L_blocks = np.zeros((S, S))
    start = 0
    for L in roots:
        size = L.shape[0]
        L_blocks[start : start + size, start : start + size] = L
        start += size
    return CholeskyRandomEffects(
        chol_V=jnp.asarray(np.stack(chol_V)),
        log_det_V=jnp.asarray(np.array(log_det_V)),
        chol_C=jnp.asarray(np.stack(chol_C)),
        ZL=jnp.asarray(ZL),
        L_blocks=jnp.asarray(L_blocks),
        block_of_column=jnp.asarray(block_of_column),
        h2_grid=jnp.asarray(h2_grid),
        sizes=sizes,
    )
