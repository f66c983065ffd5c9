"""Step 0e: each factor's loadings exchange variance with the traits' own, marginal over the
factor's scores and over both levels' random effects (one random effect in eigen coordinates, no
missing-data groups).

A factor that loads mainly on a few traits competes with those traits' own variance 1 / tau_j:
given its scores F_l the loadings Lambda_l and tau are pinned, and given them F_l is, so the
Gibbs steps F | Lambda, tau and Lambda, tau | F trade variance between the two very slowly (the
slowest tau and elements of R, and through them of G, on simulated data). This step moves along
that trade with F_l integrated out.

In rotated coordinates, marginal over U_R and U_F, with F_l ~ N(m_l, diag(Psi_l)),
Psi_il = (h2_Fl s_i + 1 - h2_Fl) / tau_Fl, and trait j's residual variance v_ij / tau_j,
v_ij = h2_j s_i + 1 - h2_j, row i of r = Eta - X B - sum_{m != l} F_m Lambda_m' - m_l lambda' is

    r_i ~ N(0, Psi_il lambda lambda' + D_i^-1),  D_i = diag(tau / v_i),  lambda = Lambda_l.

With S_i = lambda' D_i lambda and T_i = lambda' D_i r_i (matrix determinant lemma, Sherman-Morrison),

    log p(r | lambda, tau) = sum_i [ 1/2 log|D_i| - 1/2 log(1 + Psi_il S_i) - 1/2 r_i' D_i r_i
                                     + Psi_il T_i^2 / (2 (1 + Psi_il S_i)) ].

The move is a one-parameter group acting on (lambda, tau): for c > 0,

    lambda_j -> c lambda_j,   vbar_j / tau_j -> vbar_j / tau_j + psibar (1 - c^2) lambda_j^2,

(vbar_j, psibar: the row means of v_ij and Psi_il), which keeps every trait's average variance
psibar lambda_j^2 + vbar_j / tau_j and moves it between the factor and the trait; (c, c') maps to
c c', and c is allowed while every new tau_j is positive. Its Jacobian in (lambda, tau) is
c^p prod_j (tau'_j / tau_j)^2 and its Haar measure dc / c, so a Metropolis step on log c with a
symmetric proposal, accepted with probability

    min(1, pi(g_c x) J_c(x) / pi(x)),

is exact (Liu & Sabatti 2000). pi is the density above times the priors that involve lambda and
tau: tau_j ~ Gamma(a, b), and every coefficient of trait j ([B; Lambda]_.j) N(0, 1 / (tau_j d)),
d its tau-free prior precision (flat ones excepted). ``steps`` such proposals are made per factor,
log c ~ N(0, ``step_sd``^2). Then F_l is drawn from its conditional, also marginal over U_R and U_F,

    F_il | ... ~ N(m_il + T_i / (1 / Psi_il + S_i), 1 / (1 / Psi_il + S_i)),

and the next factor follows. Each proposal costs one pass over the n x p residual (T_i); D_i takes
one of G forms per trait (h2_j is on the grid), so S_i costs O(n G). The sweep runs the step
first; steps 0-2, 5l, 5m and 4 are marginal over U_R and U_F too, and steps 3 and 6 redraw them
before anything conditions on them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .._dtype import float64_sum
from .._random import normal, uniform

__all__ = ["EXCHANGE_AUTO_MAX_CELLS", "EXCHANGE_STEPS", "EXCHANGE_STEP_SD", "log_jacobian", "sample_variance_exchange"]

#: Metropolis proposals per factor and their sd of log c (acceptance 0.3-0.6 on simulated data)
EXCHANGE_STEPS = 3
EXCHANGE_STEP_SD = 0.5
#: ``Model(exchange_factors="auto")`` adds the step up to this many cells n x p (it costs 1.3-1.7x a
#: sweep where measured, n x p <= 5e4; at n = 2000, p = 5000 it would about double one); the
#: default is False (``Model``'s docstring says why)
EXCHANGE_AUTO_MAX_CELLS = 1_000_000


def log_jacobian(log_step: Float[Array, ""], tau_new: Float[Array, " p"], tau: Float[Array, " p"]) -> Float[Array, ""]:
    """log J of the map g_{exp(log_step)} at a point with total precisions ``tau``, taking them to
    ``tau_new``: p log_step + 2 sum_j log(tau'_j / tau_j) (coordinates (Lambda_l, tau))."""
    return tau.shape[0] * log_step + 2.0 * float64_sum(jnp.log(tau_new / tau))


def sample_variance_exchange(
    key: PRNGKeyArray,
    variances: Float[Array, "n G"],
    resid: Float[Array, "n p"],
    Lambda: Float[Array, "k p"],
    tau: Float[Array, " p"],
    trait_h2_index: Int[Array, " p"],
    F: Float[Array, "n k"],
    prior_mean: Float[Array, "n k"],
    tau_F: Float[Array, " k"],
    F_h2_index: Int[Array, " k"],
    coefficient_quadratic: Float[Array, " p"],
    loading_precision: Float[Array, "k p"],
    tau_shape: Float[Array, ""],
    tau_rate: Float[Array, ""],
    n_tau_coefficients: int,
    steps: int = EXCHANGE_STEPS,
    step_sd: float = EXCHANGE_STEP_SD,
) -> tuple[Float[Array, "k p"], Float[Array, " p"], Float[Array, "n k"], Bool[Array, ""]]:
    """(Lambda_l, tau) by the exchange move, then F_l, for l = 1..k in turn (module docstring).

    ``resid`` is Eta - X B, ``variances[i, g]`` = h2_g s_i + 1 - h2_g (rotated coordinates),
    ``prior_mean`` = X_F B_F (+ the markers' part). ``coefficient_quadratic[j]`` is
    sum_r d_rj [B; Lambda]_rj^2 over trait j's coefficients (tau-free prior precisions d),
    ``loading_precision`` the rows of d for Lambda, and ``n_tau_coefficients`` the number of
    coefficients whose prior is scaled by tau (the flat ones excluded). Returns (Lambda, tau, F, ok).
    """
    n, k = F.shape
    G = variances.shape[1]
    dtype = tau.dtype
    inverse_variances = 1.0 / variances  # (n, G)
    w = inverse_variances[:, trait_h2_index]  # (n, p): 1 / v_ij
    vbar = jnp.mean(variances, axis=0)[trait_h2_index]  # (p,)
    in_group = jax.nn.one_hot(trait_h2_index, G, dtype=dtype)  # (p, G)
    shape = tau_shape - 1.0 + 0.5 * n_tau_coefficients
    keys = jax.random.split(key, k)

    def one_factor(l, carry):
        Lambda, tau, F, quadratic, residual = carry  # residual: resid - F Lambda
        lam = Lambda[l]
        psi = variances[:, F_h2_index[l]] / tau_F[l]  # (n,)
        psibar = jnp.mean(psi)
        mu = prior_mean[:, l]
        r_full = residual + F[:, l][:, None] * lam[None, :]  # without factor l
        Q = r_full * w
        rho1 = float64_sum(Q * r_full, axis=0)  # sum_i r_ij^2 / v_ij
        rho2 = mu @ Q  # sum_i m_il r_ij / v_ij
        rho3 = ((mu**2) @ inverse_variances)[trait_h2_index]  # sum_i m_il^2 / v_ij
        quadratic_rest = quadratic - loading_precision[l] * lam**2
        invariant = vbar / tau + psibar * lam**2

        def pieces(c, tau_c):
            """(log pi, S, T) at lambda = c lam and tau = tau_c."""
            alpha = tau_c * c * lam
            S = inverse_variances @ (in_group.T @ (alpha * c * lam))  # (n,)
            T = Q @ alpha - mu * S
            r_D_r = tau_c * (rho1 - 2.0 * c * lam * rho2 + (c * lam) ** 2 * rho3)
            log_likelihood = (
                0.5 * n * float64_sum(jnp.log(tau_c))
                - 0.5 * float64_sum(jnp.log1p(psi * S))
                - 0.5 * float64_sum(r_D_r)
                + 0.5 * float64_sum(psi * T**2 / (1.0 + psi * S))
            )
            quad = quadratic_rest + loading_precision[l] * (c * lam) ** 2
            log_prior = float64_sum(shape * jnp.log(tau_c) - tau_c * (tau_rate + 0.5 * quad))
            return log_likelihood + log_prior, S, T

        def propose(i, state):
            c, tau_c, current, S, T = state
            key_step, key_accept = jax.random.split(jax.random.fold_in(keys[l], i))
            log_step = step_sd * normal(key_step, (), dtype)
            c_new = c * jnp.exp(log_step)
            rest = invariant - psibar * (c_new * lam) ** 2  # vbar / tau'
            allowed = jnp.all(rest > 0)
            tau_new = vbar / jnp.where(allowed, rest, 1.0)
            proposed, S_new, T_new = pieces(c_new, tau_new)
            log_ratio = proposed - current + log_jacobian(log_step, tau_new, tau_c)
            accept = allowed & (jnp.log(uniform(key_accept, (), dtype)) < log_ratio)
            keep = lambda new, old: jnp.where(accept, new, old)  # noqa: E731
            return keep(c_new, c), keep(tau_new, tau_c), keep(proposed, current), keep(S_new, S), keep(T_new, T)

        one = jnp.ones((), dtype)
        # the loop carries (log pi, S, T) of the current point: the final F_l draw needs no new pass
        c, tau, _, S, T = lax.fori_loop(0, steps, propose, (one, tau, *pieces(one, tau)))
        lam = c * lam
        precision = 1.0 / psi + S
        new = mu + T / precision + normal(jax.random.fold_in(keys[l], steps), (n,), dtype) / jnp.sqrt(precision)
        residual = r_full - new[:, None] * lam[None, :]
        return (Lambda.at[l].set(lam), tau, F.at[:, l].set(new), quadratic_rest + loading_precision[l] * lam**2,
                residual)

    quadratic = coefficient_quadratic
    Lambda, tau, F, _, _ = lax.fori_loop(0, k, one_factor, (Lambda, tau, F, quadratic, resid - F @ Lambda))
    ok = jnp.all(jnp.isfinite(Lambda)) & jnp.all(jnp.isfinite(tau)) & jnp.all(jnp.isfinite(F)) & jnp.all(tau > 0)
    return Lambda, tau, F, ok
