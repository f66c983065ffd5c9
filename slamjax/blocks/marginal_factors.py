"""Steps 5l and 5m, marginal over the factors' random effects U_F (one random effect in eigen
coordinates, no missing-data groups): 5l (``sample_intercept_shift``) moves the factors' means and
the traits' intercepts together; 5m, below, draws each factor's h2 and scores in turn, h2_Fl
marginal over its scores F_l and U_F.

In the rotated coordinates of the eigen backend the rows are independent. A priori, marginal over
U_F, the columns of F are independent,

    F_l ~ N(m_l, diag(Psi_l)),  Psi_il = (h2_Fl s_i + 1 - h2_Fl) / tau_Fl,

with m_l = X_F B_F,l (+ M B_M,l), s the eigenvalues of Z K Z'. Given the others (F_-l, the traits'
fixed and random parts, their residual precisions D = diag(tau / (1 - h2)) and Lambda), row i
of the traits' residual is r_i = lambda_l x_il + e_i with x_il = F_il - m_il, e_i ~ N(0, D^-1).
With a_l = lambda_l' D lambda_l and b_il = lambda_l' D (r_i - sum_{m != l} lambda_m F_im) - a_l m_il,

    log p(r | h2_Fl) = sum_i [ -1/2 log Psi_il - 1/2 log(a_l + 1/Psi_il) + b_il^2 / (2 (a_l + 1/Psi_il)) ] + const,
    x_il | h2_Fl, r ~ N(b_il / (a_l + 1/Psi_il), 1 / (a_l + 1/Psi_il)).

The step draws h2_Fl from P(h2_Fl = grid[g] | r, F_-l) propto prior_g p(r | grid[g]), then F_l
given it, for l = 1..k: a blocked Gibbs step on (h2_Fl, F_l) with U_F integrated out. With
M = (resid D Lambda')_il and A = Lambda D Lambda', b_il = M_il - (F A)_il + A_ll F_il - A_ll m_il,
so after one O(n p k) product every factor costs O(n G + n k). In a float32 run the sums over the
n rows that decide h2_Fl are accumulated in float64 (``_dtype.float64_sum``). The factor block (steps 4-6)
redraws U_F given the new F before anything uses it; step 7 (F given U_F) follows as before.

The conditional h2_F | F sticks where a factor is weakly determined by the data (its scores then
mostly follow their own prior, hence its h2); marginal over the factor's scores it does not.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .._dtype import float64_sum
from .._random import normal
from .factors import sample_rows_given_precision

__all__ = ["sample_factors_marginal", "sample_intercept_shift"]


def sample_factors_marginal(
    key: PRNGKeyArray,
    variances: Float[Array, "n G"],
    resid: Float[Array, "n p"],
    Lambda: Float[Array, "k p"],
    resid_precision: Float[Array, " p"],
    F: Float[Array, "n k"],
    prior_mean: Float[Array, "n k"],
    tau_F: Float[Array, " k"],
    h2_index: Int[Array, " k"],
    log_prior: Float[Array, " G"],
) -> tuple[Float[Array, "n k"], Int[Array, " k"], Bool[Array, ""]]:
    """(h2_Fl, F_l) for l = 1..k in turn, h2_Fl marginal over F_l and U_F (module docstring).

    ``resid`` is Eta - X B - Z U_R and ``variances[i, g]`` = h2_g s_i + 1 - h2_g (rotated
    coordinates). Returns (F, h2 indices, ok): ok is False when a value is not finite.
    """
    n, k = F.shape
    weighted = Lambda * resid_precision[None, :]
    A = weighted @ Lambda.T
    M = resid @ weighted.T  # (n, k)
    inverse_variances = 1.0 / variances
    log_det_V = float64_sum(jnp.log(variances), axis=0)  # sum_i log Psi_il(g) + n log tau_Fl
    keys = jax.random.split(key, 2 * k).reshape(k, 2)

    def one_factor(l, carry):
        F, FA, h2_index = carry
        a = A[l, l]
        b = M[:, l] - FA[:, l] + a * (F[:, l] - prior_mean[:, l])
        precision = a + tau_F[l] * inverse_variances  # (n, G): a_l + 1 / Psi_il(g)
        log_likelihood = -0.5 * (log_det_V + float64_sum(jnp.log(precision) - (b**2)[:, None] / precision, axis=0))
        g = jax.random.categorical(keys[l, 0], log_likelihood + log_prior).astype(h2_index.dtype)
        precision_g = precision[:, g]
        new = prior_mean[:, l] + b / precision_g + normal(keys[l, 1], (n,), b.dtype) / jnp.sqrt(precision_g)
        FA = FA + (new - F[:, l])[:, None] * A[l][None, :]
        return F.at[:, l].set(new), FA, h2_index.at[l].set(g)

    F, _, h2_index = lax.fori_loop(0, k, one_factor, (F, F @ A, h2_index))
    return F, h2_index, jnp.all(jnp.isfinite(F))


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
