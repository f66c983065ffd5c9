"""Factors made comparable across draws: varimax rotation, then a signed permutation.

F and Lambda are identified only up to rotation (F Lambda = F R R' Lambda), and the sampler draws
the rotation (``blocks/rotation.py``), so raw draws of Lambda wander over rotations and their
mean says nothing. Each draw is rotated to its varimax solution (Kaiser 1958), which fixes the
rotation up to the order and signs of the factors; those are then matched to a reference by an
assignment problem, and the reference is the mean of the aligned draws, iterated to a fixed point
(the varimax-RSP post-processing of Papastamoulis & Ntzoufras 2022, Stat Comput 32:17).

Per draw this is one orthogonal k x k matrix T (varimax rotation, then signed permutation) with

    aligned Lambda = T Lambda,   aligned factors = F T',   aligned B_F = B_F T',

so F Lambda and X_F B_F Lambda are unchanged. The factors' h2 is not rotation-equivariant: factor
h has unit variance, of which h2_mh comes from random effect m, and the factors are independent,
so the aligned factor a = sum_h T_ah F_h has the variance share

    aligned h2_ma = sum_h T_ah^2 h2_mh = diag(T diag(h2_m) T')_a

from effect m, exactly (its variance sum_h T_ah^2 = 1). That is a weighted mean of the raw h2
(weights T_ah^2, summing to 1), no longer on the grid. The aligned factors are not independent
(T diag(h2_m) T' has off-diagonal terms), so G = Lambda' diag(h2_F) Lambda + ... is NOT the same
expression in the aligned quantities; G, R and P are computed per draw from the raw draws, where
that expression holds, and do not depend on the alignment.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["align_factor_effects", "align_factor_h2", "align_loadings", "combine_aligned_means", "factor_alignment",
           "procrustes", "varimax"]


def varimax(loadings: np.ndarray, max_iter: int = 1000, tol: float = 1e-11) -> tuple[np.ndarray, np.ndarray]:
    """Varimax rotation of loadings (..., p, k) (traits x factors), batched over leading axes.

    Returns (rotated loadings, R) with rotated = loadings @ R, R orthogonal, maximising the variance
    of the squared loadings within each factor.
    """
    L = np.asarray(loadings, dtype=float)
    p, k = L.shape[-2:]
    flat = L.reshape(-1, p, k)
    R = np.broadcast_to(np.eye(k), (flat.shape[0], k, k)).copy()
    active = np.arange(flat.shape[0])  # each matrix stops once its own rotation has converged
    for _ in range(max_iter):
        if active.size == 0:
            break
        A = flat[active]
        rotated = A @ R[active]
        gradient = np.swapaxes(A, -1, -2) @ (rotated**3 - rotated * np.mean(rotated**2, axis=-2, keepdims=True))
        U, _, Vt = np.linalg.svd(gradient)
        new = U @ Vt
        moved = np.max(np.abs(new - R[active]), axis=(-2, -1))
        R[active] = new
        active = active[moved >= tol]
    R = R.reshape(*L.shape[:-2], k, k)
    return L @ R, R


def _match(reference: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """The signed permutation P (N, k, k) of the factors (rows) of every draw (N, k, p) that best
    matches the reference (k, p): an assignment on |inner products|, then signs from their signs.
    The matched draws are P @ draws."""
    N, k = draws.shape[:2]
    P = np.zeros((N, k, k))
    for i, draw in enumerate(draws):
        inner = reference @ draw.T  # (k, k): reference factor a against draw factor b
        rows, columns = linear_sum_assignment(-np.abs(inner))
        signs = np.sign(inner[rows, columns])
        signs[signs == 0] = 1.0
        P[i, rows, columns] = signs
    return P


def factor_alignment(draws: np.ndarray, max_iter: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Draws of Lambda (..., k, p) rotated to varimax and matched in order and sign to their mean,
    and the orthogonal transformation of each draw: (aligned (..., k, p), T (..., k, k)) with
    aligned = T @ draws. Apply T to the other factor-indexed draws of the same draws with
    ``align_factor_effects`` (B_F) and ``align_factor_h2`` (F_h2)."""
    draws = np.asarray(draws, dtype=float)
    shape = draws.shape
    k, p = shape[-2:]
    flat = draws.reshape(-1, k, p)
    rotated, R = varimax(np.swapaxes(flat, -1, -2))  # Lambda' R: the rotated draw is R' Lambda
    rotated = np.swapaxes(rotated, -1, -2)  # (N, k, p)
    reference = rotated[int(np.argmax(np.sum(rotated**2, axis=(1, 2))))]
    P = np.broadcast_to(np.eye(k), (flat.shape[0], k, k))
    for _ in range(max_iter):
        P = _match(reference, rotated)
        new_reference = (P @ rotated).mean(axis=0)
        if np.allclose(new_reference, reference, rtol=0.0, atol=1e-12):
            break
        reference = new_reference
    aligned = P @ rotated
    T = P @ np.swapaxes(R, -1, -2)
    return aligned.reshape(shape), T.reshape(*shape[:-2], k, k)


def align_loadings(draws: np.ndarray, max_iter: int = 20) -> np.ndarray:
    """Draws of Lambda (..., k, p) rotated to varimax and matched in order and sign to their mean.

    The result has the shape of ``draws``; its mean over draws is a meaningful posterior mean of
    the loadings. F Lambda and Lambda' Lambda of each draw are unchanged; G (which weighs the
    factors by their h2) is not a function of the aligned loadings alone (see the module notes).
    ``factor_alignment`` also returns the transformation of each draw.
    """
    return factor_alignment(draws, max_iter)[0]


def align_factor_effects(T: np.ndarray, B_F: np.ndarray) -> np.ndarray:
    """The factors' fixed effects B_F (..., b_F, k) of the aligned factors: B_F T' per draw."""
    return np.asarray(B_F) @ np.swapaxes(T, -1, -2)


def align_factor_h2(T: np.ndarray, F_h2: np.ndarray) -> np.ndarray:
    """The variance shares of the aligned factors, diag(T diag(h2_m) T') per draw and random effect:
    F_h2 (..., k) with one random effect or (..., R, k) with several (T: (..., k, k))."""
    F_h2 = np.asarray(F_h2)
    weights = np.asarray(T) ** 2  # (..., k aligned, k raw), rows sum to 1
    if F_h2.ndim == weights.ndim - 1:  # (..., k)
        return np.einsum("...ah,...h->...a", weights, F_h2)
    return np.einsum("...ah,...mh->...ma", weights, F_h2)


def procrustes(reference: np.ndarray, loadings: np.ndarray) -> np.ndarray:
    """The orthogonal T (k, k) minimising ||reference - T loadings||_F (both (k, p)): U V' for
    reference loadings' = U S V'."""
    U, _, Vt = np.linalg.svd(np.asarray(reference) @ np.asarray(loadings).T)
    return U @ Vt


def combine_aligned_means(Lambda: np.ndarray, F_h2: np.ndarray, B_F: np.ndarray):
    """Posterior means of the loadings, factor h2 and factor fixed effects from the running means
    a run keeps when it does not record Lambda per draw (``posterior.record_function``): per chain,
    the mean of the draws each rotated onto the running sum of the ones before (Procrustes).

    Lambda (chains, k, p), F_h2 (chains, R, k), B_F (chains, b_F, k). Chain c's means are rotated
    onto chain 0's (Procrustes, T_c) and averaged, then the average is rotated to its varimax
    solution V (factors ordered by their sum of squared loadings, signs making each factor's
    largest loading positive). Returns (Lambda (k, p), F_h2 (R, k), B_F (b_F, k)); transforms as
    a draw does (``align_factor_effects``, ``align_factor_h2``).
    """
    Lambda, F_h2, B_F = (np.asarray(x, dtype=float) for x in (Lambda, F_h2, B_F))
    T = np.stack([procrustes(Lambda[0], chain) for chain in Lambda])  # (chains, k, k)
    Lambda_bar = (T @ Lambda).mean(axis=0)
    F_bar = align_factor_h2(T, F_h2).mean(axis=0)
    B_bar = align_factor_effects(T, B_F).mean(axis=0)
    _, R = varimax(Lambda_bar.T)
    V = R.T  # rotated loadings: V Lambda_bar
    rotated = V @ Lambda_bar
    order = np.argsort(-np.sum(rotated**2, axis=1))
    largest = rotated[np.arange(rotated.shape[0]), np.argmax(np.abs(rotated), axis=1)]
    V = (np.where(largest < 0, -1.0, 1.0)[:, None] * V)[order]
    return V @ Lambda_bar, align_factor_h2(V, F_bar), align_factor_effects(V, B_bar)
