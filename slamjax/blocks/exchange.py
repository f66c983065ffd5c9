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

and the next factor follows.

The second move (``Model(rescale_factors=True)``, with an ordered loadings prior: MGPS, horseshoe,
TPB, whose row l has precision d_lj = phi_lj prod_{m <= l} delta_m). Before F_l is drawn, ``shrinkage_steps`` Metropolis proposals
move the factor's loadings against their prior's scale, by the group

    lambda -> c lambda,   delta_l -> delta_l / c^2,   delta_l+1 -> delta_l+1 c^2   (tau fixed),

which keeps every row's d_lj lambda_lj^2 (rows after l see delta_l delta_l+1 unchanged). A factor
the data do not need sits where Gibbs alternation is slowest: given F_l its loadings are pinned
near the noise floor, given them the deltas, and the deltas' product creeps; its share of G and R
(and through them the smallest elements of G) drifts with it. Along this orbit, with F_l
integrated out, only the likelihood above and the deltas' Gamma priors change: log c is accepted
with the ratio of those times the Jacobian c^p c^-2 c^2 (c^(p - 2) for the last factor, which has
no delta_l+1) over row l's normal normaliser c^-p. The draw of F_l then uses the final point's S and T.

With the exchange move, each proposal costs one pass over the n x p residual (T_i); D_i takes
one of G forms per trait (h2_j is on the grid), so S_i costs O(n G). The second move alone (the
default: ``exchange_factors`` off) keeps tau fixed, so S and T scale with c and every proposal costs
O(n) after one O(n p k) product shared by all factors (``sample_loadings_rescale``). The sweep runs the step
first; steps 0-2, 5l, 5m and 4 are marginal over U_R and U_F too, and steps 3 and 6 redraw them
before anything conditions on them.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .._dtype import PRECISION_MAX_FLOAT32, float64_sum
from .._random import normal, uniform
from .marginal_factors import loading_statistics

__all__ = ["EXCHANGE_AUTO_MAX_CELLS", "EXCHANGE_STEPS", "EXCHANGE_STEP_SD", "SHRINKAGE_STEPS", "SHRINKAGE_STEPS_WITH_EXCHANGE",
           "SHRINKAGE_STEP_SD",
           "OrderedShrinkage", "log_jacobian", "sample_loadings_rescale", "sample_variance_exchange",
           "shrinkage_log_jacobian"]

#: Metropolis proposals per factor and their sd of log c (acceptance per proposal at n = 500,
#: p = 100: 14-24 % on the factors the data do not need, 0-3 % on the strong ones)
EXCHANGE_STEPS = 3
EXCHANGE_STEP_SD = 0.5
#: proposals per factor of the second move (loadings against their shrinkage scale) and their sd of
#: log c (acceptance per proposal at n = 500, p = 100: 25-64 % on the factors the data do not
#: need, 7-21 % on the strong ones). Alone (the default) a proposal costs O(n): 20 of them raised
#: the smallest bulk ESS of G at n = 500, p = 100 from 72-140 (3 proposals) to 130-167 per 1000
#: sweeps per chain (3 seeds, README "Mixing"); with the exchange move each costs a pass over the
#: n x p residual, and 3 are made
SHRINKAGE_STEPS = 20
SHRINKAGE_STEPS_WITH_EXCHANGE = 3
SHRINKAGE_STEP_SD = 0.3
#: ``Model(exchange_factors="auto")`` adds the step up to this many cells n x p (it costs 1.3-1.7x a
#: sweep where measured, n x p <= 5e4; at n = 2000, p = 5000 it would about double one); the
#: default is False (``Model``'s docstring says why)
EXCHANGE_AUTO_MAX_CELLS = 1_000_000


class OrderedShrinkage(eqx.Module):
    """What the second move needs of an ordered (multiplicative gamma process) loadings prior:
    its deltas (row l's global precision is prod_{m <= l} delta_m) and their Gamma(shape, rate) priors."""

    delta: Float[Array, " k"]
    shape: Float[Array, " k"]
    rate: Float[Array, " k"]


def log_jacobian(log_step: Float[Array, ""], tau_new: Float[Array, " p"], tau: Float[Array, " p"]) -> Float[Array, ""]:
    """log J of the map g_{exp(log_step)} at a point with total precisions ``tau``, taking them to
    ``tau_new``: p log_step + 2 sum_j log(tau'_j / tau_j) (coordinates (Lambda_l, tau))."""
    return tau.shape[0] * log_step + 2.0 * float64_sum(jnp.log(tau_new / tau))


def shrinkage_log_jacobian(log_step: Float[Array, ""], has_next: Bool[Array, ""]) -> Float[Array, ""]:
    """The shrinkage move's log J_c in (lambda_l, delta_l, delta_l+1), p log c - 2 log c + 2 log c
    (the last factor has no delta_l+1: p log c - 2 log c), plus the log of row l's normal prior
    normaliser, prod_j (tau_j d_lj / c^2)^(1/2): -p log c. So 0, or -2 log c for the last factor."""
    return jnp.where(has_next, 0.0, -2.0 * log_step)


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
    shrinkage: OrderedShrinkage | None = None,
    shrinkage_steps: int = SHRINKAGE_STEPS_WITH_EXCHANGE,
    shrinkage_step_sd: float = SHRINKAGE_STEP_SD,
) -> tuple[Float[Array, "k p"], Float[Array, " p"], Float[Array, "n k"], OrderedShrinkage | None, Bool[Array, ""]]:
    """(Lambda_l, tau) by the exchange move, then (Lambda_l, delta_l, delta_l+1) by the shrinkage
    move (with ``shrinkage``), then F_l, for l = 1..k in turn (module docstring).

    ``resid`` is Eta - X B, ``variances[i, g]`` = h2_g s_i + 1 - h2_g (rotated coordinates),
    ``prior_mean`` = X_F B_F (+ the markers' part). ``coefficient_quadratic[j]`` is
    sum_r d_rj [B; Lambda]_rj^2 over trait j's coefficients (tau-free prior precisions d),
    ``loading_precision`` the rows of d for Lambda, and ``n_tau_coefficients`` the number of
    coefficients whose prior is scaled by tau (the flat ones excluded). Each
    proposal costs a pass over the n x p residual (the exchange move changes tau, hence every
    trait's weight in S and T); without exchange proposals ``sample_loadings_rescale`` makes the
    same draws in O(n) per proposal. Returns
    (Lambda, tau, F, shrinkage with its new deltas or None, ok).
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
    one = jnp.ones((), dtype)

    def one_factor(l, carry):
        Lambda, tau, F, quadratic, residual, delta = carry  # residual: resid - F Lambda
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

        def likelihood(lam_c, tau_c):
            """(log p(r | lambda, tau) with F_l, U_R, U_F integrated out, S, T) at (lam_c, tau_c)."""
            alpha = tau_c * lam_c
            S = inverse_variances @ (in_group.T @ (alpha * lam_c))  # (n,)
            T = Q @ alpha - mu * S
            r_D_r = tau_c * (rho1 - 2.0 * lam_c * rho2 + lam_c**2 * rho3)
            log_likelihood = (
                0.5 * n * float64_sum(jnp.log(tau_c))
                - 0.5 * float64_sum(jnp.log1p(psi * S))
                - 0.5 * float64_sum(r_D_r)
                + 0.5 * float64_sum(psi * T**2 / (1.0 + psi * S))
            )
            return log_likelihood, S, T

        # the exchange move: (c lambda, tau') with vbar / tau' = vbar / tau + psibar (1 - c^2) lambda^2
        invariant = vbar / tau + psibar * lam**2

        def tau_at(c):
            rest = invariant - psibar * (c * lam) ** 2  # vbar / tau'
            return vbar / jnp.where(jnp.all(rest > 0), rest, 1.0)

        def exchange_target(c):
            tau_c = tau_at(c)
            log_likelihood, S, T = likelihood(c * lam, tau_c)
            quad = quadratic_rest + loading_precision[l] * (c * lam) ** 2
            log_prior = float64_sum(shape * jnp.log(tau_c) - tau_c * (tau_rate + 0.5 * quad))
            return log_likelihood + log_prior + log_jacobian(jnp.log(c), tau_c, tau), (S, T, tau_c, log_likelihood)

        # the loops carry (log pi, S, T) of the current point: the F_l draw after them needs no new pass
        c, _, (S, T, tau, log_likelihood) = _random_walk(
            jax.random.fold_in(keys[l], 0), exchange_target, exchange_target(one), steps, step_sd,
            lambda c: jnp.all(invariant - psibar * (c * lam) ** 2 > 0), dtype)
        lam = c * lam
        quadratic = quadratic_rest + loading_precision[l] * lam**2  # the shrinkage move keeps it

        if delta is not None:
            # the shrinkage move: (c lambda, delta_l / c^2, delta_l+1 c^2) keeps every row's
            # precision times its loadings squared (module docstring)
            def shrinkage_target(c):
                log_likelihood, S, T = likelihood(c * lam, tau)
                return log_likelihood + _delta_log_prior(c, delta, l, shrinkage), (S, T)

            c, _, (S, T) = _random_walk(jax.random.fold_in(keys[l], 1), shrinkage_target,
                                        (log_likelihood + _delta_log_prior(one, delta, l, shrinkage), (S, T)),
                                        shrinkage_steps, shrinkage_step_sd, lambda c: _delta_allowed(c, delta, l), dtype)
            lam = c * lam
            delta = _rescaled_deltas(delta, l, c)

        precision = 1.0 / psi + S
        new = mu + T / precision + normal(jax.random.fold_in(keys[l], 2), (n,), dtype) / jnp.sqrt(precision)
        residual = r_full - new[:, None] * lam[None, :]
        return Lambda.at[l].set(lam), tau, F.at[:, l].set(new), quadratic, residual, delta

    delta = None if shrinkage is None else shrinkage.delta
    Lambda, tau, F, _, _, delta = lax.fori_loop(
        0, k, one_factor, (Lambda, tau, F, coefficient_quadratic, resid - F @ Lambda, delta))
    ok = jnp.all(jnp.isfinite(Lambda)) & jnp.all(jnp.isfinite(tau)) & jnp.all(jnp.isfinite(F)) & jnp.all(tau > 0)
    if shrinkage is not None:
        ok = ok & jnp.all(jnp.isfinite(delta)) & jnp.all(delta > 0)
        shrinkage = eqx.tree_at(lambda sh: sh.delta, shrinkage, delta)
    return Lambda, tau, F, shrinkage, ok


def sample_loadings_rescale(
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
    shrinkage: OrderedShrinkage,
    steps: int = SHRINKAGE_STEPS,
    step_sd: float = SHRINKAGE_STEP_SD,
) -> tuple[Float[Array, "k p"], Float[Array, "n k"], OrderedShrinkage, Bool[Array, ""]]:
    """The second move alone (``Model(rescale_factors=True)`` without ``exchange_factors``), then F_l,
    for l = 1..k in turn: the same draws as ``sample_variance_exchange`` with ``steps=0``, from
    sufficient statistics. Returns (Lambda, F, shrinkage with its new deltas, ok).

    With tau fixed, the move scales lambda_l by c, so S_i(c) = c^2 S_i, T_i(c) = c T0_i - c^2 m_il S_i
    with T0_i = lambda_l' D_i r_i (r without factor l, before m_l is taken off), and r_i' D_i r_i
    changes by -2 c sum_i m_il T0_i + c^2 sum_i m_il^2 S_i: every proposal costs O(n). As in step 5m
    (``marginal_factors``), A_i = Lambda D_i Lambda' (n, k, k) and M = (resid / v) diag(tau) Lambda'
    give S_i = A_i,ll and T0_i = M_il - (F A_i)_il + A_i,ll F_il after one O(n p k) product; an
    accepted c_m scales A's row and column m, so the later factors read A_i,lm c_m.
    """
    n, k = F.shape
    dtype = tau.dtype
    A, M = loading_statistics(variances, resid, Lambda, tau, trait_h2_index)
    keys = jax.random.split(key, k)

    def one_factor(l, carry):
        Lambda, F, scale, delta = carry  # scale: each factor's accepted c (row l's is still 1 here)
        psi = variances[:, F_h2_index[l]] / tau_F[l]  # (n,)
        mu = prior_mean[:, l]
        row = A[:, l, :]  # (n, k): A_i,lm, to be scaled by c_m (A is symmetric)
        S = row[:, l]
        T0 = M[:, l] - jnp.sum(F * scale[None, :] * row, axis=1) + S * F[:, l]
        mu_T0, mu2_S = float64_sum(mu * T0), float64_sum(mu**2 * S)

        def pieces(c):
            """(S(c), T(c)) and the log likelihood at c up to a constant (module docstring)."""
            S_c, T_c = c**2 * S, c * T0 - c**2 * mu * S
            log_likelihood = (-0.5 * float64_sum(jnp.log1p(psi * S_c)) + c * mu_T0 - 0.5 * c**2 * mu2_S
                              + 0.5 * float64_sum(psi * T_c**2 / (1.0 + psi * S_c)))
            return log_likelihood, S_c, T_c

        def target(c):
            log_likelihood, _, _ = pieces(c)
            return log_likelihood + _delta_log_prior(c, delta, l, shrinkage), ()

        one = jnp.ones((), dtype)
        c, _, _ = _random_walk(jax.random.fold_in(keys[l], 1), target, target(one), steps, step_sd,
                               lambda c: _delta_allowed(c, delta, l), dtype)
        _, S_c, T_c = pieces(c)
        precision = 1.0 / psi + S_c
        new = mu + T_c / precision + normal(jax.random.fold_in(keys[l], 2), (n,), dtype) / jnp.sqrt(precision)
        return Lambda.at[l].multiply(c), F.at[:, l].set(new), scale.at[l].set(c), _rescaled_deltas(delta, l, c)

    Lambda, F, _, delta = lax.fori_loop(0, k, one_factor, (Lambda, F, jnp.ones((k,), dtype), shrinkage.delta))
    ok = jnp.all(jnp.isfinite(Lambda)) & jnp.all(jnp.isfinite(F)) & jnp.all(jnp.isfinite(delta)) & jnp.all(delta > 0)
    return Lambda, F, eqx.tree_at(lambda sh: sh.delta, shrinkage, delta), ok


def _random_walk(key, log_target, start, n_steps: int, sd: float, allowed_at, dtype):
    """``n_steps`` random-walk Metropolis proposals on log c from c = 1, each c' = c exp(sd z):
    ``log_target(c)`` returns (log pi(g_c x) J_c(x) up to a constant, pieces), ``start`` is its
    value at c = 1; returns (the last accepted c, its log target, its pieces)."""

    def propose(i, state):
        c, current, pieces = state
        key_step, key_accept = jax.random.split(jax.random.fold_in(key, i))
        c_new = c * jnp.exp(sd * normal(key_step, (), dtype))
        proposed, pieces_new = log_target(c_new)
        accept = allowed_at(c_new) & (jnp.log(uniform(key_accept, (), dtype)) < proposed - current)
        keep = lambda new, old: jnp.where(accept, new, old)  # noqa: E731
        return keep(c_new, c), keep(proposed, current), jax.tree.map(keep, pieces_new, pieces)

    return lax.fori_loop(0, n_steps, propose, (jnp.ones((), dtype), *start))


def _delta_log_prior(c, delta: Float[Array, " k"], l, shrinkage: OrderedShrinkage) -> Float[Array, ""]:
    """log of the deltas' Gamma priors at (delta_l / c^2, delta_l+1 c^2), plus the Jacobian's and
    row l's prior normaliser's terms (``shrinkage_log_jacobian``)."""
    k = delta.shape[0]
    has_next = l + 1 < k
    next_index = jnp.minimum(l + 1, k - 1)
    delta_l, delta_next = delta[l] / c**2, delta[next_index] * c**2
    next_prior = (shrinkage.shape[next_index] - 1.0) * jnp.log(delta_next) - shrinkage.rate[next_index] * delta_next
    return ((shrinkage.shape[l] - 1.0) * jnp.log(delta_l) - shrinkage.rate[l] * delta_l
            + jnp.where(has_next, next_prior, 0.0) + shrinkage_log_jacobian(jnp.log(c), has_next))


def _rescaled_deltas(delta: Float[Array, " k"], l, c) -> Float[Array, " k"]:
    """(delta_l / c^2, delta_l+1 c^2), the last factor's delta_l alone."""
    k = delta.shape[0]
    return delta.at[l].divide(c**2).at[jnp.minimum(l + 1, k - 1)].multiply(jnp.where(l + 1 < k, c**2, 1.0))


def _delta_allowed(c, delta: Float[Array, " k"], l) -> Bool[Array, ""]:
    """In float32, c is allowed while every row's global precision stays in range."""
    if delta.dtype != jnp.float32:
        return jnp.array(True)
    return jnp.max(jnp.cumprod(_rescaled_deltas(delta, l, c))) <= PRECISION_MAX_FLOAT32
