"""Planted bugs: each replaces one piece of the sampler by a subtly wrong version (via pytest's
``monkeypatch``; a wrapper of the original where possible, a copy otherwise), so that
tests/test_power.py can show that the statistical tests fail on it.

Every bug changes only a conditional of the sweep, never the prior draws of the marginal-conditional
simulator or the closed forms the tests compare with. ``BUGS`` maps a name to a function
``plant(monkeypatch)``; ``test_power.CAUGHT_BY`` says which test of the suite catches each.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

import slamjax.blocks.columns as columns
import slamjax.blocks.marginal_factors as marginal_factors
import slamjax.blocks.rotation as rotation
import slamjax.blocks.trait_groups as trait_groups
import slamjax.sampler as sampler
from slamjax._random import normal, uniform
from slamjax.blocks.regression import sample_regression
from slamjax.blocks.variance import collapsed_h2_log_likelihood, sample_h2_index
from slamjax.observation import Probes, Voom
from slamjax.priors import mgps
from slamjax.priors._base import inverse_gamma_draw
from slamjax.random_effects.eigen import EigenRandomEffect
from slamjax.random_effects.woodbury import WoodburyRandomEffects


def _wrap_rotation(monkeypatch, change):
    """sample_factor_rotation called with some of its arguments changed by ``change(kwargs)``."""
    original = rotation.sample_factor_rotation
    names = ("key", "re", "F", "X_F", "B_F", "Lambda", "F_h2_index", "tau_F", "B_F_precision", "Lambda_precision",
             "tau")

    def buggy(*args, **kwargs):
        kwargs = {**dict(zip(names, args)), **kwargs}
        return original(**change(kwargs))

    monkeypatch.setattr(sampler, "sample_factor_rotation", buggy)
    monkeypatch.setattr(rotation, "sample_factor_rotation", buggy)


def rotation_without_tau_F(monkeypatch):
    """The rotation's target with tot_F_prec replaced by ones."""
    _wrap_rotation(monkeypatch, lambda kw: {**kw, "tau_F": jnp.ones_like(kw["tau_F"])})


def rotation_without_B_F_prior(monkeypatch):
    """The rotation's target without the B_F prior term."""
    _wrap_rotation(monkeypatch, lambda kw: {**kw, "B_F_precision": jnp.zeros_like(kw["B_F_precision"])})


def rotation_without_Lambda_prior(monkeypatch):
    """The rotation's target without the Lambda prior term."""
    _wrap_rotation(monkeypatch, lambda kw: {**kw, "Lambda_precision": jnp.zeros_like(kw["Lambda_precision"])})


def rotation_uniform_angle(monkeypatch):
    """Every pair rotated by a uniform angle instead of its von Mises conditional."""

    def uniform_angle(key, mu, kappa):
        return jnp.pi * (2.0 * uniform(key, jnp.shape(mu)) - 1.0)

    monkeypatch.setattr(rotation, "von_mises", uniform_angle)


def _plant_shear(monkeypatch, with_Lambda_prior: bool, own_prior: bool):
    """rotation._shear called with its Lambda prior weights zeroed, or with the prior forms of the
    factor that is added (m) in place of those of the one that moves (l)."""
    original = rotation._shear

    def buggy(key, R, Lambda_now, M, Lambda_weights, l, m, move):
        weights = Lambda_weights if with_Lambda_prior else jnp.zeros_like(Lambda_weights)
        forms = M if own_prior else M.at[l].set(M[m])
        return original(key, R, Lambda_now, forms, weights, l, m, move)

    monkeypatch.setattr(rotation, "_shear", buggy)


def shear_without_Lambda_prior(monkeypatch):
    """The shears' target without the Lambda prior term."""
    _plant_shear(monkeypatch, with_Lambda_prior=False, own_prior=True)


def shear_other_factor_prior(monkeypatch):
    """Each shear F_l + s F_m weighed with factor m's prior (its h2_F, tau_F and B_F precisions)."""
    _plant_shear(monkeypatch, with_Lambda_prior=True, own_prior=False)


def stale_h2_index(monkeypatch):
    """Collapsed h2: (B, Lambda, tau) drawn at the previous h2 index instead of the new one."""

    def buggy(key, re, y, W, h2_index, prior_precision, tau_shape, tau_rate, n, n_flat, log_prior, collapsed):
        key_h2, key_coef, key_effects = jax.random.split(key, 3)
        gram_all, Wy_all, yy_all = re.regression_statistics_grid(y, W)
        log_likelihood = collapsed_h2_log_likelihood(
            gram_all, Wy_all, yy_all, re.log_det_V, prior_precision, tau_shape, tau_rate, n, n_flat
        )
        new_index = sample_h2_index(key_h2, log_likelihood, log_prior)
        cols = jnp.arange(y.shape[1])
        statistics = (gram_all[h2_index], Wy_all[h2_index, cols], yy_all[h2_index, cols])  # the bug: old index
        coef, tau, ok = sample_regression(key_coef, *statistics, prior_precision, tau_shape, tau_rate, n, n_flat)
        resid = y - W @ coef
        ok = jnp.stack([jnp.array(True), ok, jnp.array(True)])  # one flag per stage, as sample_columns
        return coef, tau, new_index, re.sample_effects(key_effects, resid, new_index, tau), ok

    for module in (columns, sampler, trait_groups):
        monkeypatch.setattr(module, "sample_columns", buggy)


def h2_log_determinant_dropped(monkeypatch):
    """The h2 likelihood without -1/2 log|V_g| (eigen backend)."""
    monkeypatch.setattr(EigenRandomEffect, "log_det_V", property(lambda self: jnp.zeros(self.h2_grid.shape[0])))


def effect_variance_shrunk(monkeypatch):
    """Random effects drawn with 0.8 times their conditional variance (eigen backend): mean +
    sqrt(0.8) (draw - mean), the mean being the draw at tau -> infinity (it does not depend on tau)."""
    original = EigenRandomEffect.sample_effects

    def buggy(self, key, resid, h2_index, tau):
        mean = original(self, key, resid, h2_index, tau * 1e30)
        return mean + jnp.sqrt(0.8) * (original(self, key, resid, h2_index, tau) - mean)

    monkeypatch.setattr(EigenRandomEffect, "sample_effects", buggy)


def tau_shape_plus_one(monkeypatch):
    """tau drawn with its Gamma shape + 1."""

    def buggy(key, gram, Wy, yy, prior_precision, tau_shape, tau_rate, n, n_flat):
        return sample_regression(key, gram, Wy, yy, prior_precision, tau_shape + 1.0, tau_rate, n, n_flat)

    monkeypatch.setattr(columns, "sample_regression", buggy)


def factor_prior_precision_changed(monkeypatch):
    """Factor scores drawn with the factors' prior precision tau_F / (1 - h2_F) times 1.25."""
    original = sampler.sample_factor_scores

    def buggy(key, resid, Lambda, resid_precision, prior_mean, prior_precision):
        return original(key, resid, Lambda, resid_precision, prior_mean, 1.25 * prior_precision)

    monkeypatch.setattr(sampler, "sample_factor_scores", buggy)


def _marginal_factors_copy(update: bool, log_det: bool, rows: bool = True):
    """``marginal_factors.sample_factors_marginal`` with the update of F A after each factor, the
    -1/2 log|Psi_l| term or the traits' row-wise precisions tau_j / v_ij (U_R integrated out)
    switchable (a copy: the planted bugs below turn one off; ``rows=False`` uses tau_j / (1 - h2_j),
    the precision given U_R, as the step did before it integrated U_R out)."""

    def draw(key, variances, resid, Lambda, tau, trait_h2_index, F, prior_mean, tau_F, h2_index, log_prior):
        n, k = F.shape
        grid = jnp.linspace(0.0, 1.0, variances.shape[1] + 1)[:-1]  # one random effect: h2 = 0, 1/G, ...
        trait_variances = variances[:, trait_h2_index] if rows else jnp.broadcast_to(
            (1.0 - grid[trait_h2_index])[None, :], resid.shape)
        D = tau[None, :] / trait_variances  # (n, p)
        A = jnp.einsum("kp,np,lp->nkl", Lambda, D, Lambda)
        M = (resid * D) @ Lambda.T
        log_det_V = jnp.sum(jnp.log(variances), axis=0) * log_det
        keys = jax.random.split(key, 2 * k).reshape(k, 2)
        FA = jnp.einsum("nkl,nl->nk", A, F)
        for l in range(k):
            b = M[:, l] - FA[:, l] + A[:, l, l] * (F[:, l] - prior_mean[:, l])
            precision = A[:, l, l][:, None] + tau_F[l] / variances
            log_likelihood = -0.5 * (log_det_V + jnp.sum(jnp.log(precision) - (b**2)[:, None] / precision, axis=0))
            g = jax.random.categorical(keys[l, 0], log_likelihood + log_prior).astype(h2_index.dtype)
            new = prior_mean[:, l] + b / precision[:, g] + normal(keys[l, 1], (n,)) / jnp.sqrt(precision[:, g])
            if update:
                FA = FA + (new - F[:, l])[:, None] * A[:, l, :]
            F, h2_index = F.at[:, l].set(new), h2_index.at[l].set(g)
        return F, h2_index, jnp.array(True)

    return draw


def intercept_shift_without_B0_prior(monkeypatch):
    """Step 5l: the shift t drawn without the intercepts' prior term (as if B_0 were flat)."""
    original = marginal_factors.sample_intercept_shift

    def buggy(key, intercept, variances, F, prior_mean, tau_F, h2_index, Lambda, B0, B0_precision):
        return original(key, intercept, variances, F, prior_mean, tau_F, h2_index, Lambda, B0, 0.0 * B0_precision)

    for module in (marginal_factors, sampler):
        monkeypatch.setattr(module, "sample_intercept_shift", buggy)


def marginal_factors_stale(monkeypatch):
    """Step 5m: F A not updated after a factor's scores move (later factors see the old scores)."""
    for module in (marginal_factors, sampler):
        monkeypatch.setattr(module, "sample_factors_marginal", _marginal_factors_copy(update=False, log_det=True))


def marginal_h2_log_determinant_dropped(monkeypatch):
    """Step 5m without the -1/2 log|Psi_l| term of h2_Fl's marginal likelihood."""
    for module in (marginal_factors, sampler):
        monkeypatch.setattr(module, "sample_factors_marginal", _marginal_factors_copy(update=True, log_det=False))


def marginal_factors_given_U_R(monkeypatch):
    """Step 5m with the traits' precisions given U_R, tau_j / (1 - h2_j), on every row, while U_R
    is integrated out (the step before it was marginal over U_R)."""
    for module in (marginal_factors, sampler):
        monkeypatch.setattr(module, "sample_factors_marginal", _marginal_factors_copy(update=True, log_det=True,
                                                                                      rows=False))


def exchange_jacobian_without_tau(monkeypatch):
    """Step 0e: the Jacobian without its prod_j (tau'_j / tau_j)^2 (as if the move were in
    (Lambda_l, 1 / tau))."""
    import slamjax.blocks.exchange as exchange

    monkeypatch.setattr(exchange, "log_jacobian", lambda log_step, tau_new, tau: tau.shape[0] * log_step)


def shrinkage_jacobian_dropped(monkeypatch):
    """Step 0e's second move: the last factor's Jacobian term c^-2 dropped (as if delta_l's scaling
    were compensated by a next row it does not have)."""
    import slamjax.blocks.exchange as exchange

    monkeypatch.setattr(exchange, "shrinkage_log_jacobian", lambda log_step, has_next: 0.0 * log_step)


def shrinkage_jacobian_of_the_last(monkeypatch):
    """Step 0e's second move: every factor given the last factor's Jacobian term c^-2 (as if no
    factor's delta_l+1 were scaled by c^2)."""
    import slamjax.blocks.exchange as exchange

    monkeypatch.setattr(exchange, "shrinkage_log_jacobian", lambda log_step, has_next: -2.0 * log_step)


def swap_jacobian_dropped(monkeypatch):
    """Step 0o: the swap of the last two factors without its Jacobian 1 / delta_k (as if the product
    of all deltas were kept, as it is for the other pairs)."""
    import slamjax.blocks.order as order

    original = order.log_swap_ratio

    def without_jacobian(delta, l, shape, rate):
        return original(delta, l, shape, rate) + jnp.where(l + 2 < delta.shape[0], 0.0, jnp.log(delta[l + 1]))

    monkeypatch.setattr(order, "log_swap_ratio", without_jacobian)


def swap_without_shrinkage(monkeypatch):
    """Step 0o: factors swap places but leave their column shrinkage behind (the deltas kept), and
    the swaps are accepted as if they had taken it."""
    import slamjax.sampler as sampler

    original = sampler.permute_factors

    def keep_deltas(state, order):
        return eqx.tree_at(lambda s: s.Lambda_prior.delta, original(state, order), state.Lambda_prior.delta)

    monkeypatch.setattr(sampler, "permute_factors", keep_deltas)


def delta_shape_plus_half(monkeypatch):
    """The ordered column shrinkage delta_h (MGPS, horseshoe) drawn with its Gamma shape + 0.5: the
    conditional draw sees shifted hyperparameters, the prior draws do not."""
    original, hyper = mgps._OrderedShrinkage._sample_delta, mgps._OrderedShrinkage._delta_hyper

    def shifted_hyper(self, k):
        shape, rate = hyper(self, k)
        return shape + 0.5, rate

    def buggy(self, *args):
        mgps._OrderedShrinkage._delta_hyper = shifted_hyper  # while tracing this draw only
        try:
            return original(self, *args)
        finally:
            mgps._OrderedShrinkage._delta_hyper = hyper

    monkeypatch.setattr(mgps._OrderedShrinkage, "_sample_delta", buggy)


def woodbury_low_rank_dropped(monkeypatch):
    """Woodbury backend: the other effects drawn with D^-1 in place of V^-1 (the low-rank correction
    of the Woodbury identity dropped), the diagonalised effect drawn right. The same key gives the
    same prior draws of Matheron's rule in both calls."""
    original = WoodburyRandomEffects.sample_effects

    def buggy(self, key, resid, h2_index, tau):
        right = original(self, key, resid, h2_index, tau)
        without_M = eqx.tree_at(lambda re: re.whiten_M, self, jnp.zeros_like(self.whiten_M))
        wrong = original(without_M, key, resid, h2_index, tau)
        return jnp.concatenate([right[: self.r_first], wrong[self.r_first :]])

    monkeypatch.setattr(WoodburyRandomEffects, "sample_effects", buggy)


def probe_variance_rate_halved(monkeypatch):
    """Probes: the residual sum of squares enters the probe variances' rate with 1/4, not 1/2."""

    def buggy(self, key, parameters, Eta):
        residual = jnp.where(self.observed, self.y - Eta[:, self.gene], 0.0)
        shape = self.prior_shape + 0.5 * jnp.sum(self.observed, axis=0)
        rate = self.prior_rate + 0.25 * jnp.sum(residual**2, axis=0)
        return {"variance": inverse_gamma_draw(key, shape, rate)}

    monkeypatch.setattr(Probes, "sample_parameters", buggy)


def voom_weights_dropped_from_mean(monkeypatch):
    """Voom: the latent mean weighs the data with 1 instead of w_ij (the precision kept right)."""

    def buggy(self, key, parameters, mean, resid_variance):
        precision = self.w + 1.0 / resid_variance[None, :]
        centre = (self.y + mean / resid_variance[None, :]) / precision
        return centre + normal(key, mean.shape) / jnp.sqrt(precision)

    monkeypatch.setattr(Voom, "sample_latent", buggy)


def float32_jitter_too_large(monkeypatch):
    """float32 only: every Cholesky factorisation's diagonal scaled by 1.1 instead of 1 + 10 eps (1.2e-6)."""
    import slamjax._linalg as linalg

    monkeypatch.setattr(linalg, "JITTER_EPS", 0.1)


BUGS = {
    "rotation: tot_F_prec dropped": rotation_without_tau_F,
    "rotation: B_F prior dropped": rotation_without_B_F_prior,
    "rotation: Lambda prior dropped": rotation_without_Lambda_prior,
    "rotation: uniform angle": rotation_uniform_angle,
    "shear: Lambda prior dropped": shear_without_Lambda_prior,
    "shear: the other factor's prior": shear_other_factor_prior,
    "collapsed h2: stale index": stale_h2_index,
    "h2 log-determinant dropped": h2_log_determinant_dropped,
    "U variance x0.8": effect_variance_shrunk,
    "tau shape +1": tau_shape_plus_one,
    "factor prior precision x1.25": factor_prior_precision_changed,
    "delta shape +0.5": delta_shape_plus_half,
    "marginal factors: F A not updated": marginal_factors_stale,
    "intercept shift: B_0 prior dropped": intercept_shift_without_B0_prior,
    "marginal h2_F: log-determinant dropped": marginal_h2_log_determinant_dropped,
    "marginal factors: precisions given U_R": marginal_factors_given_U_R,
    "exchange: Jacobian without tau": exchange_jacobian_without_tau,
    "shrinkage move: last factor's Jacobian dropped": shrinkage_jacobian_dropped,
    "shrinkage move: every factor's Jacobian as the last one's": shrinkage_jacobian_of_the_last,
    "factor swap: last pair's Jacobian dropped": swap_jacobian_dropped,
    "factor swap: column shrinkage left behind": swap_without_shrinkage,
    "woodbury: low-rank correction dropped": woodbury_low_rank_dropped,
    "probes: variance rate halved": probe_variance_rate_halved,
    "voom: weights dropped from the latent mean": voom_weights_dropped_from_mean,
    "float32: Cholesky jitter 0.1": float32_jitter_too_large,
}
