"""Inverse Cholesky factors and log-determinants of one m x m matrix per grid point, computed once.

The ``cholesky`` backend factorises V_g (m = n), the ``woodbury`` backend M_g (m = S'). Both write
the factors on the device, in chunks of grid points, into one preallocated array, so the peak
memory is the final array plus one chunk (no host copy of the whole grid).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float

__all__ = ["inverse_cholesky_on_grid"]


@functools.partial(jax.jit, static_argnums=0, donate_argnums=(1, 2))
def _fill_chunk(matrices_of, inverse, log_det, shared, per_point, start):
    """Writes L_g^-1 and log |A_g| (A_g = L_g L_g') for the chunk of grid points from index start on."""
    A = matrices_of(shared, per_point)
    chol = jnp.linalg.cholesky(A)
    identity = jnp.broadcast_to(jnp.eye(A.shape[-1]), A.shape)
    chunk_inverse = lax.linalg.triangular_solve(chol, identity, left_side=True, lower=True)
    chunk_log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=1, axis2=2)), axis=1)
    inverse = lax.dynamic_update_slice(inverse, chunk_inverse, (start, 0, 0))
    return inverse, lax.dynamic_update_slice(log_det, chunk_log_det, (start,))


def inverse_cholesky_on_grid(
    matrices_of: Callable[[tuple, tuple], Float[Array, "chunk m m"]],
    shared: tuple,
    per_point: tuple[np.ndarray, ...],
    size: int,
    chunk_bytes: int,
) -> tuple[Float[Array, "G m m"], Float[Array, " G"]]:
    """L_g^-1 (lower triangular) and log |A_g| of the positive-definite A_g = L_g L_g' of every grid point g.

    ``matrices_of(shared, per_point_chunk)`` builds A_g (chunk, m, m) for a chunk of grid points
    from the device arrays ``shared`` and the chunk's rows of every array in ``per_point`` (each
    with the grid on its first axis); it must be a module-level function (a static argument of
    the compiled fill). About ``chunk_bytes`` of m x m matrices are factorised per compiled call;
    the last chunk overlaps the one before, so every call has the same shapes. A failed
    factorisation leaves NaN in its log-determinant.
    """
    n_grid = per_point[0].shape[0]
    chunk = int(max(1, min(n_grid, chunk_bytes // (3 * 8 * max(size, 1) ** 2))))
    inverse, log_det = jnp.zeros((n_grid, size, size)), jnp.zeros(n_grid)
    for start in range(0, n_grid, chunk):
        start = min(start, n_grid - chunk)
        rows = tuple(jnp.asarray(array[start : start + chunk]) for array in per_point)
        inverse, log_det = _fill_chunk(matrices_of, inverse, log_det, shared, rows, start)
    return inverse, log_det
