"""The factor-analysis start: a maximum-likelihood fit, and a valid starting state."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from slamjax.sampler import sweep
from slamjax.start import factor_analysis, factor_analysis_start

from _models import tiny_model


def test_factor_analysis_fits_the_covariance_of_factor_data():
    rng = np.random.default_rng(0)
    n, p, k = 4000, 12, 2
    Lambda = rng.normal(size=(k, p))
    psi = rng.uniform(0.2, 0.6, p)
    Y = rng.normal(size=(n, k)) @ Lambda + rng.normal(size=(n, p)) * np.sqrt(psi)
    Y -= Y.mean(axis=0)
    fitted_Lambda, fitted_psi = factor_analysis(jax.random.key(0), jnp.asarray(Y), k, steps=1500)
    fitted = np.asarray(fitted_Lambda.T @ fitted_Lambda + jnp.diag(fitted_psi))
    truth = Lambda.T @ Lambda + np.diag(psi)
    sample = Y.T @ Y / n
    # the ML fit is as close to the truth as the sample covariance is (sampling error ~ 1/sqrt(n))
    assert np.abs(fitted - truth).max() < 2 * np.abs(sample - truth).max() + 0.02
    np.testing.assert_allclose(np.asarray(fitted_psi), psi, atol=0.1)


def test_start_state_is_valid_and_sweeps():
    model = tiny_model(n=30, p=6, k=2, fraction_missing=0.2)
    state = factor_analysis_start(jax.random.key(0), model.data, steps=200)
    assert state.Lambda.shape == (2, 6) and state.F.shape == (30, 2)
    assert np.all(np.isfinite(np.asarray(state.Lambda))) and np.all(np.asarray(state.tot_Eta_prec) > 0)
    new, failures = jax.jit(sweep)(jax.random.key(1), state, model.data)
    assert int(failures) == 0 and np.all(np.isfinite(np.asarray(new.Lambda)))
