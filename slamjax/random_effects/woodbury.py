"""The ``woodbury`` backend: one large random effect diagonalised, the others as a low-rank update.

Designs such as an animal model with a pedigree matrix plus iid cage and litter effects have one
random effect with about as many levels as rows (the "first" effect, f) and others with few
levels in all (S' = sum of their levels, S' << n). With Z_f L_f = Q Sigma P' (as in the ``eigen``
backend) and W = Q' [Z_m L_m for m != f] (n x S'), the covariance of a rotated column at grid
point g is

    Q' V_g Q = D_g + W C_g W',   D_g = h2_gf s + (1 - sum h2_g)   (diagonal, >= 1/d),
                                 C_g = diag(h2_gm on the columns of effect m),

and by the Woodbury identity, with M_g = I + C_g^1/2 W' D_g^-1 W C_g^1/2 = L_g L_g' (S' x S'),

    x' V_g^-1 y = x' D_g^-1 y - (L_g^-1 C_g^1/2 W' D_g^-1 x)' (L_g^-1 C_g^1/2 W' D_g^-1 y),
    log |V_g|   = sum log D_g + log |M_g|.

Kept for every grid point: L_g^-1 (G S'^2 floats, against the ``cholesky`` backend's G n^2).
D_g takes one value per distinct pair (h2_gf, 1 - sum h2_g), so W' D^-1 x is formed once per pair
(P of them; P = 66 against G = 220 points for three effects and 10 divisions). Statistics at every
grid point then cost O(P n S' m + G S'^2 m) for m columns instead of O(G n^2 m).

Effects are held as a = [b; a_rest] (b: the rotated effects of f, as in ``eigen``; a_rest: the
others, as in ``cholesky``); ``to_levels`` gives [U_1; ...; U_R] in the model's order.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._errors import NumericalError
from ._grid_factors import inverse_cholesky_on_grid
from ._grid_terms import GridBackend, log_likelihood_on_grid, matheron_prior_draws
from .cholesky import _apply_per_column
from .eigen import covariance_root, sigma_times, singular_decomposition

__all__ = ["WoodburyRandomEffects", "woodbury_random_effects", "woodbury_memory_estimate"]


class WoodburyRandomEffects(GridBackend):
    Q: Float[Array, "n n"]  # left singular vectors of Z_f L_f
    s: Float[Array, " n"]  # squared singular values of Z_f L_f, zero padded to n
    sigma: Float[Array, " rf"]  # singular values, zero padded to r_f
    W: Float[Array, "n Sr"]  # Q' [Z_m L_m, m != f]
    inverse_D: Float[Array, "P n"]  # D^-1 for every distinct pair (h2_f, 1 - sum h2)
    pair_of_grid: Int[Array, " G"]
    sqrt_C: Float[Array, "G Sr"]  # C_g^1/2
    whiten_M: Float[Array, "G Sr Sr"]  # L_g^-1 (lower triangular)
    log_det_V: Float[Array, " G"]
    levels_map: Float[Array, "S S"]  # [b; a_rest] -> [U_1; ...; U_R]
    block_of_column: Int[Array, " S"]  # which random effect each entry of [b; a_rest] belongs to
    h2_grid: Float[Array, "G R"]
    first: int = eqx.field(static=True)  # the diagonalised random effect
    sizes: tuple[int, ...] = eqx.field(static=True)

    @property
    def n(self) -> int:
        return self.Q.shape[0]

    @property
    def r(self) -> int:
        return sum(self.sizes)

    @property
    def r_first(self) -> int:
        return self.sigma.shape[0]

    def rotate(self, x: Float[Array, "n c"]) -> Float[Array, "n c"]:
        return self.Q.T @ x

    def unrotate(self, x: Float[Array, "n c"]) -> Float[Array, "n c"]:
        return self.Q @ x

    def _low_rank_terms(self, DX: Float[Array, "P n m"]) -> Float[Array, "G Sr m"]:
        """L_g^-1 C_g^1/2 W' D_g^-1 x for every grid point g, from D_p^-1 x for every pair p."""
        T = jnp.einsum("ns,pnm->psm", self.W, DX)  # one product for all pairs
        scaled = self.sqrt_C[:, :, None] * T[self.pair_of_grid]
        return jnp.einsum("gij,gjm->gim", self.whiten_M, scaled)

    def _low_rank_column(self, Dy: Float[Array, "n c"], h2_index: Int[Array, " c"]) -> Float[Array, "c Sr"]:
        """L_g^-1 C_g^1/2 W' D_g^-1 y_j for every column j at its own grid point g = h2_index[j]."""
        t = self.sqrt_C[h2_index] * (Dy.T @ self.W)  # (c, S')
        return _apply_per_column(self.whiten_M, t, h2_index)

    def regression_statistics_grid(
        self, y: Float[Array, "n c"], W: Float[Array, "n q"]
    ) -> tuple[Float[Array, "G q q"], Float[Array, "G c q"], Float[Array, "G c"]]:
        """W' V_g^-1 W, W' V_g^-1 y_j and y_j' V_g^-1 y_j at every grid point g."""
        q = W.shape[1]
        DW = self.inverse_D[:, :, None] * W[None]  # (P, n, q)
        Dy = self.inverse_D[:, :, None] * y[None]
        low = self._low_rank_terms(jnp.concatenate([DW, Dy], axis=2))
        low_W, low_y = low[:, :, :q], low[:, :, q:]
        pair = self.pair_of_grid
        gram = jnp.einsum("pna,nb->pab", DW, W)[pair] - jnp.einsum("gsa,gsb->gab", low_W, low_W)
        Wy = jnp.einsum("pnq,nc->pcq", DW, y)[pair] - jnp.einsum("gsq,gsc->gcq", low_W, low_y)
        yy = (self.inverse_D @ y**2)[pair] - jnp.sum(low_y**2, axis=1)
        return gram, Wy, yy

    def regression_statistics(
        self, y: Float[Array, "n c"], W: Float[Array, "n q"], h2_index: Int[Array, " c"]
    ) -> tuple[Float[Array, "c q q"], Float[Array, "c q"], Float[Array, " c"]]:
        """W' V^-1 W, W' V^-1 y_j and y_j' V^-1 y_j for every column j at its grid point.

        W' V_g^-1 W is formed at every grid point (O(P n S' q + G S'^2 q)) and gathered per column.
        """
        DW = self.inverse_D[:, :, None] * W[None]
        low_W = self._low_rank_terms(DW)
        gram = jnp.einsum("pna,nb->pab", DW, W)[self.pair_of_grid] - jnp.einsum("gsa,gsb->gab", low_W, low_W)
        Dy = self.inverse_D[self.pair_of_grid[h2_index]].T * y  # (n, c)
        low_y = self._low_rank_column(Dy, h2_index)  # (c, S')
        Wy = (W.T @ Dy).T - jnp.einsum("csq,cs->cq", low_W[h2_index], low_y)
        yy = jnp.sum(y * Dy, axis=0) - jnp.sum(low_y**2, axis=1)
        return gram[h2_index], Wy, yy

    def quadratic_forms(self, E: Float[Array, "n k"], h2_index: Int[Array, " k"]) -> Float[Array, "k k k"]:
        """E' V_g^-1 E at the grid point g = h2_index[m] of every column m (stacked on the first axis)."""

        def at(index):
            DE = self.inverse_D[self.pair_of_grid[index]][:, None] * E
            low = self.whiten_M[index] @ (self.sqrt_C[index][:, None] * (self.W.T @ DE))
            return E.T @ DE - low.T @ low

        return lax.map(at, h2_index)

    def h2_log_likelihood(self, resid: Float[Array, "n c"], tau: Float[Array, " c"]) -> Float[Array, "c G"]:
        """log N(resid_j; 0, V_g / tau_j) for every column and grid point, up to a constant in g."""
        low = self._low_rank_terms(self.inverse_D[:, :, None] * resid[None])
        quad = (self.inverse_D @ resid**2)[self.pair_of_grid] - jnp.sum(low**2, axis=1)  # (G, c)
        return log_likelihood_on_grid(self.log_det_V, quad.T, tau)

    def effect_on_rows(self, a: Float[Array, "S c"]) -> Float[Array, "n c"]:
        """Q' sum_m Z_m U_m: Sigma b + W a_rest."""
        return sigma_times(self.sigma, self.n, a[: self.r_first], self.n) + self.W @ a[self.r_first :]

    def sample_effects(
        self, key: PRNGKeyArray, resid: Float[Array, "n c"], h2_index: Int[Array, " c"], tau: Float[Array, " c"]
    ) -> Float[Array, "S c"]:
        """a | resid ~ N(D_a A' V_g^-1 resid, (D_a - D_a A' V_g^-1 A D_a) / tau),  A = [Sigma, W],
        D_a = diag(h2_g per entry of a).

        Drawn by Matheron's rule, as in the cholesky backend: with a* ~ N(0, D_a / tau) and
        e* ~ N(0, (1 - sum h2_g) / tau I), a = a* + D_a A' V_g^-1 (resid - A a* - e*).
        """
        a_star, e_star, h2_entries = matheron_prior_draws(
            key, self.h2_grid, self.block_of_column, h2_index, tau, resid.shape[0]
        )
        gap = resid - self.effect_on_rows(a_star) - e_star
        inverse_D = self.inverse_D[self.pair_of_grid[h2_index]].T  # (n, c)
        D_gap = inverse_D * gap
        low = self._low_rank_column(D_gap, h2_index)  # L^-1 C^1/2 W' D^-1 gap, (c, S')
        M_inv = _apply_per_column(self.whiten_M, low, h2_index, transpose=True)  # M^-1 C^1/2 W' D^-1 gap
        V_inv_gap = D_gap - inverse_D * (self.W @ (self.sqrt_C[h2_index] * M_inv).T)
        Sigma_t_gap = sigma_times(self.sigma, self.n, V_inv_gap, self.r_first)
        update = jnp.concatenate([Sigma_t_gap, self.W.T @ V_inv_gap], axis=0)
        return a_star + h2_entries * update

    def to_levels(self, a: Float[Array, "S c"]) -> Float[Array, "S c"]:
        """Random effects on the levels of every K_m, stacked in the model's order: [U_1; ...; U_R]."""
        return self.levels_map @ a


def woodbury_memory_estimate(n: int, sizes: tuple[int, ...], n_grid: int, n_pairs: int, n_columns: int = 0) -> int:
    """Bytes kept on the device: n^2 (Q) + G S'^2 (the L_g^-1) + n S' + S^2 + P n float64 numbers,
    plus the P n c + G S' c terms of the h2 draw for c = ``n_columns`` columns per chain."""
    S = sum(sizes)
    S_rest = S - max(sizes)
    return 8 * (n * n + n_grid * S_rest * (S_rest + 1) + n * S_rest + S * S + n_pairs * n
                + n_columns * (n_pairs * n + n_grid * S_rest))


def grid_pairs(h2_grid: np.ndarray, first: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct pairs (h2_f, 1 - sum h2) of the grid and the pair of every grid point."""
    pairs = np.stack([h2_grid[:, first], 1.0 - h2_grid.sum(axis=1)], axis=1)
    unique, pair_of_grid = np.unique(np.round(pairs, 12), axis=0, return_inverse=True)
    return unique, pair_of_grid.reshape(-1)


# Bytes of M_g factorised per compiled call while filling whiten_M (bounds the transient memory).
_FILL_BYTES = 2**27


def _capacitance_on_grid(shared, per_point) -> Float[Array, "chunk Sr Sr"]:
    """M_g = I + C_g^1/2 W' D_g^-1 W C_g^1/2 for a chunk of grid points."""
    (W,) = shared
    S_rest = W.shape[1]

    def one(inverse_D, sqrt_C):
        B = jnp.sqrt(inverse_D)[:, None] * W * sqrt_C[None, :]
        return jnp.eye(S_rest) + B.T @ B

    return lax.map(lambda args: one(*args), per_point)


def first_effect(sizes: tuple[int, ...]) -> int:
    """The random effect the woodbury backend diagonalises: the one with the most levels."""
    return int(np.argmax(sizes))


def woodbury_random_effects(
    Zs: list[np.ndarray], Ks: list[np.ndarray] | None, h2_grid: np.ndarray, roots: list[np.ndarray] | None = None
) -> WoodburyRandomEffects:
    """Diagonalises the random effect with the most levels and factorises M_g at every grid point, once."""
    if len(Zs) < 2:
        raise ValueError("the woodbury backend needs at least two random effects; use the eigen backend")
    if roots is None:
        roots = [covariance_root(K) for K in Ks]
    sizes = tuple(int(Z.shape[1]) for Z in Zs)
    first = first_effect(sizes)
    r_first = Zs[first].shape[1]
    Q, s, sigma, Pt = singular_decomposition(Zs[first] @ roots[first])
    rest = [m for m in range(len(Zs)) if m != first]
    W = Q.T @ np.concatenate([Zs[m] @ roots[m] for m in rest], axis=1)
    S_rest = W.shape[1]

    pairs, pair_of_grid = grid_pairs(h2_grid, first)
    inverse_D = 1.0 / (pairs[:, :1] * s[None, :] + pairs[:, 1:])  # (P, n); 1 - sum h2 >= 1/d > 0
    block_rest = np.repeat(np.asarray(rest), [sizes[m] for m in rest])
    sqrt_C = np.sqrt(h2_grid[:, block_rest])  # (G, S')

    W_device = jnp.asarray(W)
    whiten_M, log_det_M = inverse_cholesky_on_grid(
        _capacitance_on_grid, (W_device,), (inverse_D[pair_of_grid], sqrt_C), S_rest, _FILL_BYTES
    )
    log_det_V = np.asarray(log_det_M) - np.log(inverse_D).sum(axis=1)[pair_of_grid]
    if not np.all(np.isfinite(log_det_V)):
        raise NumericalError(
            "random effects: the Cholesky factorisation of M_g = I + C^1/2 W' D^-1 W C^1/2 failed; "
            "check the relationship matrices for non-finite values"
        )

    S = sum(sizes)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    levels_map = np.zeros((S, S))
    levels_map[offsets[first] : offsets[first + 1], :r_first] = roots[first] @ Pt.T
    column = r_first
    for m in rest:
        levels_map[offsets[m] : offsets[m + 1], column : column + sizes[m]] = roots[m]
        column += sizes[m]
    return WoodburyRandomEffects(
        Q=jnp.asarray(Q), s=jnp.asarray(s), sigma=jnp.asarray(sigma), W=W_device,
        inverse_D=jnp.asarray(inverse_D), pair_of_grid=jnp.asarray(pair_of_grid), sqrt_C=jnp.asarray(sqrt_C),
        whiten_M=whiten_M, log_det_V=jnp.asarray(log_det_V), levels_map=jnp.asarray(levels_map),
        block_of_column=jnp.asarray(np.concatenate([np.full(r_first, first), block_rest])),
        h2_grid=jnp.asarray(h2_grid), first=first, sizes=sizes,
    )
