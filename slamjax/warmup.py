"""Warm-up aids that are not Gibbs steps: used during warm-up only, never while recording.

``reorder_factors`` is MegaLMM's ``reorder_factors``: it first resets factors whose scores are
nearly collinear with a larger factor's (|cos(F_i, F_j)| above ``drop_correlation``; the smaller
one gets zero loadings and fresh N(0, 1) scores, so it can pick up another signal), then orders
factors by decreasing size, sum_j Lambda_hj^2 * mean_i F_ih^2. The column shrinkage of the
ordered prior (tau_h = prod_{l <= h} delta_l) moves with its factor: delta is recomputed from the
permuted tau. Factor order mixes slowly under the ordered shrinkage prior, so moving the largest
factors first early in warm-up shortens it.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray

from ._random import normal
from ._x64 import float64
from .state import State, permute_factors

__all__ = ["reorder_factors", "factor_sizes"]


def factor_sizes(state: State) -> Float[Array, " k"]:
    """sum_j Lambda_hj^2 * mean_i F_ih^2 for every factor h."""
    return jnp.sum(state.Lambda**2, axis=1) * jnp.mean(state.F**2, axis=0)


def _collinear_with_larger(F: Float[Array, "n k"], sizes: Float[Array, " k"], threshold: float):
    """True for each factor whose scores have |cos| > threshold with a larger factor that is kept."""
    norms = jnp.sqrt(jnp.sum(F**2, axis=0))
    cosine = jnp.abs((F.T @ F) / (norms[:, None] * norms[None, :]))
    order = jnp.argsort(-sizes)
    k = F.shape[1]

    def visit(position, dropped):
        h = order[position]
        larger_kept = (jnp.arange(k) < position) & ~dropped[order]
        collinear = jnp.any(larger_kept & (cosine[h, order] > threshold))
        return dropped.at[h].set(collinear)

    return lax.fori_loop(1, k, visit, jnp.zeros(k, dtype=bool))


@float64
def reorder_factors(key: PRNGKeyArray, state: State, drop_correlation: float = 0.6) -> State:
    """The state with collinear factors reset and factors ordered by decreasing size."""
    sizes = factor_sizes(state)
    dropped = _collinear_with_larger(state.F, sizes, drop_correlation)
    keep = (~dropped).astype(state.F.dtype)
    Lambda = state.Lambda * keep[:, None]
    F = jnp.where(dropped[None, :], normal(key, state.F.shape), state.F)
    U_F = state.U_F * keep[None, :]
    B_F = state.B_F * keep[None, :]
    order = jnp.argsort(-jnp.where(dropped, -1.0, sizes))  # dropped factors last
    reset = eqx.tree_at(lambda s: (s.Lambda, s.F, s.U_F, s.B_F), state, (Lambda, F, U_F, B_F))
    return permute_factors(reset, order)
