"""Step 0: exact draws of the factors' rotation and shears, one pair of factors at a time.

The data see the factors only through F Lambda, which is unchanged by (F, B_F, Lambda) ->
(F R, B_F R, R' Lambda) for any rotation R. Only the priors tell rotations apart (each factor has
its own h2_F and tau_F; each row of Lambda its own shrinkage), so the steps F | Lambda and
Lambda | F move along this ridge very slowly and chains settle in different rotations, with
different splits of G and R. This step draws the rotation itself.

For factors a < b and R the rotation by theta in their plane, the conditional of theta given
everything else, marginal over the factors' random effects U_F, is

    log p(theta) = -1/2 [ sum_m tau_Fm e_m' V_m^-1 e_m + sum_m tau_Fm sum_i D^B_im B_F,im^2
                          + sum_j tau_j sum_m D^Lambda_mj Lambda_mj^2 ] (rotated) + const
                 = kappa cos(2 theta - mu) + const,

with E = F - X_F B_F, V_m the covariance at factor m's grid point and D the tau-free prior
precisions. So 2 theta ~ von Mises(mu, kappa), and theta + pi (both factors' signs flipped, an
equally likely state) with probability 1/2: a generalised Gibbs step over the group of plane
rotations (Liu & Sabatti 2000), whose Haar measure is uniform in theta and Jacobian is 1. All pairs
are visited once per sweep, in rounds of disjoint pairs, each pair at O(k^2 + p + b_F) from the k
matrices tau_Fm E' V_m^-1 E.

A pair whose terms are not finite (NaN or infinite F, B_F, Lambda or prior precisions) gets the
angle NaN, so the rotated arrays are not finite and the sweep reports the failure (a finite but
huge concentration is fine: its angle is the mode).

Shears (``shear=True``). Rotations keep the eigenvalues of the factors' Gram matrix F'F, but
the data are as blind to (F, B_F, Lambda) -> (F T, B_F T, T^-1 Lambda) for any invertible T: the
priors alone weigh the factors' correlations too. In each round, after its rotations, every pair (a, b) is sheared
both ways: for (l, m) = (a, b), then (b, a), column l of T gains s times column m (F_l + s F_m,
B_F,l + s B_F,m) and row m of Lambda loses s times row l, so F Lambda is unchanged. With t_l the
columns of T so far, M_l = tau_Fl E' V_l^-1 E + sum_i tau_Fl D^B_il b_i b_i' (the matrices the
rotations use) and w_m = tau D^Lambda_m,

    log p(s) = -1/2 [ (t_l + s t_m)' M_l (t_l + s t_m) + sum_j w_mj (Lambda_mj - s Lambda_lj)^2 ] + const,

so s ~ N(-c / P, 1 / P) with P = t_m' M_l t_m + sum_j w_mj Lambda_lj^2 and
c = t_l' M_l t_m - sum_j w_mj Lambda_mj Lambda_lj. Shears along one pair form an additive group
whose maps have determinant 1 (Haar measure Lebesgue, Jacobian 1): another exact generalised
Gibbs step. The pairs of a round are disjoint, so their shears are drawn at once. Rotations and
shears together move the factors' loadings between factors of different h2_F, which the steps
F | Lambda and Lambda | F do slowly: it is what the slowest elements of G, off-diagonals of
low-h2 traits, are made of.

Because U_F is integrated out, the step runs first in a sweep: the factor block (steps 4-6)
draws U_F, B_F, tau_F and h2_F afresh given the new F before anything uses U_F.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._random import normal, von_mises

__all__ = ["sample_factor_rotation"]


def round_robin(k: int) -> np.ndarray:
    """Rounds of disjoint pairs (a < b) covering every pair of k factors once (the circle method):
    (rounds, pairs per round, 2); with k odd, each round has one pair with the dummy factor k."""
    K = k + k % 2
    players = list(range(K))
    rounds = []
    for _ in range(K - 1):
        rounds.append([sorted((players[i], players[K - 1 - i])) for i in range(K // 2)])
        players = [players[0], players[-1], *players[1:-1]]
    return np.array(rounds, dtype=np.int32)


def _weighted_grams(weights: Float[Array, "rows K"], B: Float[Array, "rows K"], chunk: int = 1024) -> Float[Array, "K K K"]:
    """Q[l] = sum_j weights[j, l] B[j]' B[j] (K x K each), the upper triangles accumulated over chunks
    of rows as matrix products (no rows x K^3 temporary)."""
    rows, K = B.shape
    if rows == 0:
        return jnp.zeros((K, K, K), B.dtype)
    chunk = min(chunk, rows)
    pad = -rows % chunk
    upper_a, upper_b = np.triu_indices(K)
    shaped = [jnp.pad(x, ((0, pad), (0, 0))).reshape(-1, chunk, K) for x in (weights, B)]

    def add_chunk(total, inputs):
        w, b = inputs
        return total + w.T @ (b[:, upper_a] * b[:, upper_b]), None

    upper, _ = lax.scan(add_chunk, jnp.zeros((K, len(upper_a)), B.dtype), shaped)
    Q = jnp.zeros((K, K, K), B.dtype).at[:, upper_a, upper_b].set(upper)
    return Q + jnp.swapaxes(jnp.triu(Q, 1), 1, 2)


def _pair_terms(x, y, u, v):
    """A1, A2, C of sum u (c x + s y)^2 + v (-s x + c y)^2 = c^2 A1 + s^2 A2 + 2 c s C, summed over the
    last axis."""
    return (jnp.sum(u * x**2 + v * y**2, axis=-1), jnp.sum(u * y**2 + v * x**2, axis=-1),
            jnp.sum((u - v) * x * y, axis=-1))


def _shear(key, R, Lambda_now, M, Lambda_weights, l, m, move):
    """One shear of each pair (l[i], m[i]) of a round: T[:, l] += s T[:, m] and Lambda[m] -= s Lambda[l],
    s ~ N(-c / P, 1 / P) (module docstring); pairs where ``move`` is False keep s = 0."""
    Rl, Rm, Ml = R[:, l].T, R[:, m].T, M[l]
    precision = jnp.einsum("pi,pij,pj->p", Rm, Ml, Rm) + jnp.sum(Lambda_weights[m] * Lambda_now[l] ** 2, axis=-1)
    linear = jnp.einsum("pi,pij,pj->p", Rl, Ml, Rm) - jnp.sum(Lambda_weights[m] * Lambda_now[m] * Lambda_now[l], axis=-1)
    z = normal(key, l.shape, precision.dtype)
    s = jnp.where(move, (z - linear / jnp.sqrt(precision)) / jnp.sqrt(precision), 0.0)
    return R.at[:, l].add(s[None, :] * R[:, m]), Lambda_now.at[m].add(-s[:, None] * Lambda_now[l])


def sample_factor_rotation(
    key: PRNGKeyArray,
    re,
    F: Float[Array, "n k"],
    X_F: Float[Array, "n bF"],
    B_F: Float[Array, "bF k"],
    Lambda: Float[Array, "k p"],
    F_h2_index: Int[Array, " k"],
    tau_F: Float[Array, " k"],
    B_F_precision: Float[Array, "bF k"],
    Lambda_precision: Float[Array, "k p"],
    tau: Float[Array, " p"],
    offset: Float[Array, "n k"] | None = None,
    shear: bool = False,
) -> tuple[Float[Array, "n k"], Float[Array, "bF k"], Float[Array, "k p"], Float[Array, "k k"]]:
    """Transforms (F, B_F, Lambda) by a product of plane rotations (and, with ``shear``, of shears
    along every pair of factors, both ways) drawn from their conditionals.

    The pairs of one round are disjoint, so their angles are conditionally independent and drawn
    at once: k - 1 (or k) sequential rounds instead of k (k - 1) / 2 pairs. B_F may have more rows
    than X_F has columns: coefficients whose fitted part ``offset`` (n x k) the caller gives (the
    marker effects, M B_M, without an n x m product here); they rotate with the others.
    Returns (F T, B_F T, T^-1 Lambda, T) with T the k x k matrix drawn, orthogonal without
    ``shear`` (the caller transforms the offset with it: M B_M T).
    """
    k = F.shape[1]
    if k < 2:
        return F, B_F, Lambda, jnp.eye(k, dtype=F.dtype)
    rounds = jnp.asarray(round_robin(k))
    K = k + k % 2  # a dummy factor k when k is odd: its pairs keep theta = 0
    pad = K - k
    E = F - X_F @ B_F[: X_F.shape[1]] - (0.0 if offset is None else offset)
    M = jnp.pad(re.quadratic_forms(E, F_h2_index) * tau_F[:, None, None], ((0, pad), (0, pad), (0, pad)))
    Lambda_weights = jnp.pad(Lambda_precision * tau[None, :], ((0, pad), (0, 0)))
    # B_F's prior term of factor l after the rotation is R[:, l]' Q_l R[:, l] with
    # Q_l = sum_j w_jl b_j b_j' (b_j the rows of B_F): it joins the likelihood's quadratic forms, so
    # the rounds never touch B_F's rows (many with markers), which are rotated once at the end.
    B_padded = jnp.pad(B_F, ((0, 0), (0, pad)))
    M = M + _weighted_grams(jnp.pad(B_F_precision * tau_F[None, :], ((0, 0), (0, pad))), B_padded)

    def rotate_round(i, carry):
        R, Lambda_now = carry
        a, b = rounds[i, :, 0], rounds[i, :, 1]  # (P,)
        Ra, Rb, Ma, Mb = R[:, a].T, R[:, b].T, M[a], M[b]  # (P, K), (P, K, K)
        A1 = jnp.einsum("pi,pij,pj->p", Ra, Ma, Ra) + jnp.einsum("pi,pij,pj->p", Rb, Mb, Rb)
        A2 = jnp.einsum("pi,pij,pj->p", Rb, Ma, Rb) + jnp.einsum("pi,pij,pj->p", Ra, Mb, Ra)
        C = jnp.einsum("pi,pij,pj->p", Ra, Ma, Rb) - jnp.einsum("pi,pij,pj->p", Ra, Mb, Rb)
        terms = _pair_terms(Lambda_now[a], Lambda_now[b], Lambda_weights[a], Lambda_weights[b])
        A1, A2, C = A1 + terms[0], A2 + terms[1], C + terms[2]
        # -1/2 (c^2 A1 + s^2 A2 + 2 c s C) = -1/4 (A1 - A2) cos 2theta - 1/2 C sin 2theta + const
        kappa_cos, kappa_sin = -0.25 * (A1 - A2), -0.5 * C
        # Non-finite terms have no angle: theta = NaN makes the rotated arrays non-finite, which the
        # sweep reports (von_mises itself returns the mode for a huge or NaN concentration).
        move = b < k  # pairs with the dummy factor keep theta = 0
        finite = jnp.isfinite(kappa_cos) & jnp.isfinite(kappa_sin)
        kappa_cos, kappa_sin = jnp.where(finite, kappa_cos, 0.0), jnp.where(finite, kappa_sin, 0.0)
        key_angle, key_flip = jax.random.split(jax.random.fold_in(key, i))
        angle = von_mises(key_angle, jnp.arctan2(kappa_sin, kappa_cos), jnp.hypot(kappa_cos, kappa_sin))
        flip = jax.random.bernoulli(key_flip, jnp.asarray(0.5, F.dtype), a.shape).astype(F.dtype)
        theta = jnp.where(move, 0.5 * angle + jnp.pi * flip, 0.0)
        theta = jnp.where(move & ~finite, jnp.nan, theta)
        c, s = jnp.cos(theta), jnp.sin(theta)

        def rotate_columns(X):  # X[:, a], X[:, b] <- c X[:, a] + s X[:, b], -s X[:, a] + c X[:, b]
            xa, xb = X[:, a], X[:, b]
            return X.at[:, a].set(c * xa + s * xb).at[:, b].set(-s * xa + c * xb)

        def rotate_rows(X):  # X[a], X[b] <- c X[a] + s X[b], -s X[a] + c X[b]
            xa, xb = X[a], X[b]
            return X.at[a].set(c[:, None] * xa + s[:, None] * xb).at[b].set(-s[:, None] * xa + c[:, None] * xb)

        R, Lambda_now = rotate_columns(R), rotate_rows(Lambda_now)
        if shear:
            key_shear = jax.random.fold_in(key_flip, 1)
            R, Lambda_now = _shear(jax.random.fold_in(key_shear, 0), R, Lambda_now, M, Lambda_weights, a, b, move)
            R, Lambda_now = _shear(jax.random.fold_in(key_shear, 1), R, Lambda_now, M, Lambda_weights, b, a, move)
        return R, Lambda_now

    initial = (jnp.eye(K, dtype=F.dtype), jnp.pad(Lambda, ((0, pad), (0, 0))))
    R, Lambda_new = lax.fori_loop(0, rounds.shape[0], rotate_round, initial)
    return F @ R[:k, :k], (B_padded @ R)[:, :k], Lambda_new[:k], R[:k, :k]
