"""Loadings made comparable across draws: varimax rotation, then a signed permutation.

F and Lambda are identified only up to rotation (F Lambda = F R R' Lambda), and the sampler draws
the rotation (``blocks/rotation.py``), so raw draws of Lambda wander over rotations and their
mean says nothing. Each draw is rotated to its varimax solution (Kaiser 1958), which fixes the
rotation up to the order and signs of the factors; those are then matched to a reference by an
assignment problem, and the reference is the mean of the aligned draws, iterated to a fixed point
(the varimax-RSP post-processing of Papastamoulis & Ntzoufras 2022, Stat Comput 32:17).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["align_loadings", "varimax"]


def varimax(loadings: np.ndarray, max_iter: int = 1000, tol: float = 1e-11) -> tuple[np.ndarray, np.ndarray]:
    """Varimax rotation of loadings (..., p, k) (traits x factors), batched over leading axes.

    Returns (rotated loadings, R) with rotated = loadings @ R, R orthogonal, maximising the variance
    of the squared loadings within each factor.
    """
    L = np.asarray(loadings, dtype=float)
    p, k = L.shape[-2:]
    R = np.broadcast_to(np.eye(k), (*L.shape[:-2], k, k)).copy()
    for _ in range(max_iter):
        rotated = L @ R
        gradient = np.swapaxes(L, -1, -2) @ (rotated**3 - rotated * np.mean(rotated**2, axis=-2, keepdims=True))
        U, _, Vt = np.linalg.svd(gradient)
        previous, R = R, U @ Vt
        if np.max(np.abs(R - previous)) < tol:
            break
    return L @ R, R


def _match(reference: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Signed permutation of the factors (rows) of every draw (N, k, p) that best matches the
    reference (k, p): an assignment on |inner products|, then signs from their signs."""
    aligned = np.empty_like(draws)
    for i, draw in enumerate(draws):
        inner = reference @ draw.T  # (k, k): reference factor a against draw factor b
        rows, columns = linear_sum_assignment(-np.abs(inner))
        signs = np.sign(inner[rows, columns])
        signs[signs == 0] = 1.0
        aligned[i, rows] = signs[:, None] * draw[columns]
    return aligned


def align_loadings(draws: np.ndarray, max_iter: int = 20) -> np.ndarray:
    """Draws of Lambda (..., k, p) rotated to varimax and matched in order and sign to their mean.

    The result has the shape of ``draws``; its mean over draws is a meaningful posterior mean of
    the loadings, and F Lambda, G and R are unchanged by the alignment of each draw.
    """
    draws = np.asarray(draws, dtype=float)
    shape = draws.shape
    k, p = shape[-2:]
    flat = draws.reshape(-1, k, p)
    rotated = np.swapaxes(varimax(np.swapaxes(flat, -1, -2))[0], -1, -2)  # (N, k, p)
    reference = rotated[int(np.argmax(np.sum(rotated**2, axis=(1, 2))))]
    aligned = rotated
    for _ in range(max_iter):
        aligned = _match(reference, rotated)
        new_reference = aligned.mean(axis=0)
        if np.allclose(new_reference, reference, rtol=0.0, atol=1e-12):
            break
        reference = new_reference
    return aligned.reshape(shape)
