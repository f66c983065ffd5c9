"""Steps 5l and 5m, marginal over the factors' random effects U_F (one random effect in eigen
coordinates, no missing-data groups): 5l (``sample_intercept_shift``) moves the factors' means and
the traits' intercepts together; 5m, below, draws each factor's h2 and scores in turn, h2_Fl
marginal over its scores F_l, U_F and the traits' random effects U_R.

In the rotated coordinates of the eigen backend the rows are independent. A priori, marginal over
U_F, the columns of F are independent,

    F_l ~ N(m_l, diag(Psi_l)),  Psi_il = (h2_Fl s_i + 1 - h2_Fl) / tau_Fl,

with m_l = X_F B_F,l (+ M B_M,l), s the eigenvalues of Z K Z'. Marginal over U_R, trait j's
residual in row i has variance v_ij / tau_j, v_ij = h2_j s_i + 1 - h2_j, so row i of the traits'
residual r_i = Eta_i - X_i B is r_i = F_i Lambda + e_i, e_i ~ N(0, D_i^-1), D_i = diag(tau / v_i):
a precision that differs by row. With x_il = F_il - m_il, a_il = lambda_l' D_i lambda_l and
b_il = lambda_l' D_i (r_i - sum_{m != l} lambda_m F_im) - a_il m_il,

    log p(r | h2_Fl) = sum_i [ -1/2 log Psi_il - 1/2 log(a_il + 1/Psi_il) + b_il^2 / (2 (a_il + 1/Psi_il)) ] + const,
    x_il | h2_Fl, r ~ N(b_il / (a_il + 1/Psi_il), 1 / (a_il + 1/Psi_il)).

The step draws h2_Fl from P(h2_Fl = grid[g] | r, F_-l) propto prior_g p(r | grid[g]), then F_l
given it, for l = 1..k: a blocked Gibbs step on (h2_Fl, F_l) with U_F and U_R integrated out. D_i
takes one of G forms per trait (h2_j is on the grid), so with C_g = sum_{j: h2_j = grid[g]} tau_j
lambda_j lambda_j' (k x k) the row-wise A_i = Lambda D_i Lambda' = sum_g C_g / (h2_g s_i + 1 - h2_g)
costs O(p k^2 G + n G k^2) in all, and b_il = M_il - (F A_i)_il + A_i,ll (F_il - m_il) with
M = (r / v) diag(tau) Lambda' (one O(n p k) product); then every factor costs O(n G + n k). In a
float32 run the sums over the n rows that decide h2_Fl are accumulated in float64
(``_dtype.float64_sum``). U_R is then redrawn given the new F (``sampler.sweep``), and the factor
block (steps 4-6) redraws U_F, before anything uses them; step 7 (F given U_F) follows as before.

The conditional h2_F | F sticks where a factor is weakly determined by the data (its scores then
mostly follow their own prior, hence its h2); marginal over the factor's scores it does not. Given
U_R it still trades slowly with the traits' own genetic shares (a factor's genetic variance on a
trait against the trait's U_R): marginal over U_R as well, the smallest bulk ESS of G's elements
grew 2.3-fold on simulated data (n = 200, p = 20, 3 factors; ``benchmarks/mixing.py``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .._dtype import float64_sum
from .._random import normal
from .factors import sample_rows_given_precision

__all__ = ["loading_statistics", "sample_factors_marginal", "sample_intercept_shift"]


def sample_factors_marginal(
    key: PRNGKeyArray,
    variances: Float[Array, "n G"],
    resid: Float[Array, "n p"],
    Lambda: Float[Array, "k p"],
    tau: Float[Array, " p"],
    trait_h2_index: Int[Array, " p"],
    F: Float[Array, "n k"],
    prior_mean: Float[Array, "n k"],
    tau_F: Float[Array, " k"],
    h2_index: Int[Array, " k"],
    log_prior: Float[Array, " G"],
) -> tuple[Float[Array, "n k"], Int[Array, " k"], Bool[Array, ""]]:
    """(h2_Fl, F_l) for l = 1..k in turn, h2_Fl marginal over F_l, U_F and U_R (module docstring).

    ``resid`` is Eta - X B (U_R integrated out), ``variances[i, g]`` = h2_g s_i + 1 - h2_g (rotated
    coordinates), ``tau`` and ``trait_h2_index`` the traits' total precisions and grid points.
    Returns (F, h2 indices, ok): ok is False when a value is not finite.
    """
    n, k = F.shape
    inverse_variances = 1.0 / variances
    A, M = loading_statistics(variances, resid, Lambda, tau, trait_h2_index)
    log_det_V = float64_sum(jnp.log(variances), axis=0)  # sum_i log Psi_il(g) + n log tau_Fl
    keys = jax.random.split(key, 2 * k).reshape(k, 2)

    def one_factor(l, carry):
        F, FA, h2_index = carry
        a = A[:, l, l]  # (n,)
        b = M[:, l] - FA[:, l] + a * (F[:, l] - prior_mean[:, l])
        precision = a[:, None] + tau_F[l] * inverse_variances  # (n, G): a_il + 1 / Psi_il(g)
        log_likelihood = -0.5 * (log_det_V + float64_sum(jnp.log(precision) - (b**2)[:, None] / precision, axis=0))
        g = jax.random.categorical(keys[l, 0], log_likelihood + log_prior).astype(h2_index.dtype)
        precision_g = precision[:, g]
        new = prior_mean[:, l] + b / precision_g + normal(keys[l, 1], (n,), b.dtype) / jnp.sqrt(precision_g)
        FA = FA + (new - F[:, l])[:, None] * A[:, l, :]
        return F.at[:, l].set(new), FA, h2_index.at[l].set(g)

    F, _, h2_index = lax.fori_loop(0, k, one_factor, (F, jnp.einsum("nkl,nl->nk", A, F), h2_index))
    return F, h2_index, jnp.all(jnp.isfinite(F))


def loading_statistics(
    variances: Float[Array, "n G"],
    resid: Float[Array, "n p"],
    Lambda: Float[Array, "k p"],
    tau: Float[Array, " p"],
    trait_h2_index: Int[Array, " p"],
) -> tuple[Float[Array, "n k k"], Float[Array, "n k"]]:
    """(A, M): A_i = Lambda D_i Lambda' and M = (resid / v) diag(tau) Lambda', D_i = diag(tau / v_i),
    v_ij = ``variances[i, trait_h2_index[j]]``. D_i takes one of G forms per trait, so A costs
    O(p k^2 G + n G k^2) through C_g = sum_{j: h2_j = grid[g]} tau_j lambda_j lambda_j', and M one
    O(n p k) product (module docstring)."""
    G = variances.shape[1]
    inverse_variances = 1.0 / variances
    weighted = Lambda * tau[None, :]  # (k, p)
    in_group = jax.nn.one_hot(trait_h2_index, G, dtype=Lambda.dtype)  # (p, G)
    C = jnp.einsum("kp,pg,lp->gkl", weighted, in_group, Lambda)  # C_g, (G, k, k)
    A = jnp.einsum("ng,gkl->nkl", inverse_variances, C)  # (n, k, k)
    M = (resid * inverse_variances[:, trait_h2_index]) @ weighted.T  # (n, k)
    return A, M


def sample_intercept_shift(
    key: PRNGKeyArray,
    intercept: Float[Array, " n"],
    variances: Float[Array, "n G"],
    F: Float[Array, "n k"],
    prior_mean: Float[Array, "n k"],
    tau_F: Float[Array, " k"],
    h2_index: Int[Array, " k"],
    Lambda: Float[Array, "k p"],
    B0: Float[Array, " p"],
    B0_precision: Float[Array, " p"],
) -> tuple[Float[Array, "n k"], Float[Array, " p"], Bool[Array, ""]]:
    """Step 5l: the factors' means and the traits' intercepts moved together.

    (F, B_0) -> (F + x t', B_0 - t' Lambda) leaves X B + F Lambda unchanged for every t (x: the
    intercept column, rotated), so only the priors weigh t: F_l ~ N(m_l, diag(Psi_l)) marginal over
    U_F (module docstring) and B_0j ~ N(0, 1 / w_j) (w_j = the intercept's precision times tau_j;
    0 when flat). Translations are a group with Lebesgue (Haar) measure and Jacobian 1, so drawing

        t ~ N(P^-1 r, P^-1),  P = diag(sum_i x_i^2 / Psi_il) + Lambda diag(w) Lambda',
                              r_l = -sum_i x_i (F_il - m_il) / Psi_il + (Lambda diag(w) B_0)_l,

    is an exact generalised Gibbs step (Liu & Sabatti 2000). Without a factor intercept, the
    factors' component along x (the pedigree's top eigenvector is nearly constant, and its
    eigenvalue large) trades with the traits' intercepts, which then mix slowly. Returns (F, B_0, ok).
    """
    inverse_Psi = tau_F[None, :] / variances[:, h2_index]  # (n, k)
    weighted_Lambda = Lambda * B0_precision[None, :]
    precision = jnp.diag((intercept**2) @ inverse_Psi) + weighted_Lambda @ Lambda.T
    rhs = -(intercept[:, None] * (F - prior_mean) * inverse_Psi).sum(axis=0) + weighted_Lambda @ B0
    t, ok = sample_rows_given_precision(key, precision, rhs[None, :])
    t = t[0]
    return F + intercept[:, None] * t[None, :], B0 - t @ Lambda, ok & jnp.all(jnp.isfinite(t))
