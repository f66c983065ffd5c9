"""The prior of the recorded (identified) loadings and factor fixed effects, in closed form.

The sampler works with parameter-expanded factors: F has total precision tot_F_prec (tau_F), and
the recorded draws divide it out, Lambda* = Lambda / sqrt(tau_F) and B_F* = B_F sqrt(tau_F)
(``slamjax.posterior``). The priors are placed on the expanded Lambda (precision tau_j P_hj, P the
MGPS precision) and B_F (precision tau_F D, D the ARD precision), so

    B_F*_ih | D ~ N(0, 1 / D_ih)                                       (ARD, exactly)
    Lambda*_hj | P, tau ~ N(0, 1 / (tau_j P_hj tau_F_h)),  tau_F_h ~ Gamma(nu_F / 2, nu_F V_F / 2):

the recorded loadings' prior is MGPS times a per-factor scale mixture, and Lambda*_hj sqrt(tau_j P_hj)
is Student-t with nu_F degrees of freedom and scale sqrt(V_F) (``sj.Priors.tot_F_var``; with the
default V_F = 0.9, nu_F = 20). ``tests/test_geweke.py`` checks that the sampler keeps these
recorded quantities at their prior (test functions "Lambda*^2" and "B_F*^2").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import slamjax as sj
from slamjax.state import sample_prior_state

from _models import tiny_model
from _stats import Z_BOUND, z_uniform

N_DRAWS = 20_000


@pytest.mark.parametrize("tot_F_var", [None, sj.VarianceComponent(V=2.0, nu=3.0)], ids=["default", "wide"])
def test_recorded_loadings_and_factor_effects_follow_their_documented_prior(tot_F_var):
    priors = sj.Priors(intercept_precision=0.5) if tot_F_var is None else sj.Priors(
        intercept_precision=0.5, tot_F_var=tot_F_var)
    model = tiny_model(k=3, priors=priors)
    data = model.data
    V_F, nu_F = priors.tot_F_var.V, priors.tot_F_var.nu

    def recorded(key):
        state = sample_prior_state(key, data)
        P = data.Lambda_prior.precision(state.Lambda_prior)
        D = data.B_F_prior.precision(state.B_F_prior)
        Lambda_star = state.Lambda / jnp.sqrt(state.tot_F_prec)[:, None]
        B_F_star = state.B_F * jnp.sqrt(state.tot_F_prec)[None, :]
        return Lambda_star * jnp.sqrt(state.tot_Eta_prec[None, :] * P), B_F_star * jnp.sqrt(D)

    Lambda_std, B_F_std = jax.device_get(jax.jit(jax.vmap(recorded))(jax.random.split(jax.random.key(4), N_DRAWS)))
    for pit in (scipy.stats.t.cdf(Lambda_std, df=nu_F, scale=np.sqrt(V_F)), scipy.stats.norm.cdf(B_F_std)):
        z_m, z_v = z_uniform(pit.reshape(N_DRAWS, -1))
        assert np.all(np.abs(z_m) < Z_BOUND) and np.all(np.abs(z_v) < Z_BOUND), (z_m, z_v)
    if tot_F_var is not None:  # the standard normal of plain MGPS is rejected: the mixture is there
        z_m, z_v = z_uniform(scipy.stats.norm.cdf(Lambda_std).reshape(N_DRAWS, -1))
        assert np.min(np.abs(z_v)) > Z_BOUND
