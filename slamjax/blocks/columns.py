"""Steps 1-3 (traits) and 4-6 (factors): coefficients, total precision, h2 and random effects of columns.

Each column y_j of Eta (or of F) follows

    y_j = W beta_j + sum_m Z_m U_mj + e_j,   y_j ~ N(W beta_j, V_{h2_j} / tau_j) marginal over U,

and the three blocks are drawn in one of two orders:

* ``collapsed=False`` (MegaLMM): (beta_j, tau_j) | h2_j, then h2_j | beta_j, tau_j, then U | all;
* ``collapsed=True``: h2_j marginal over beta_j, tau_j and U, then (beta_j, tau_j) | h2_j, then U | all,
  i.e. one joint draw of (h2_j, beta_j, tau_j, U_j) given W. h2_j no longer waits for tau_j and
  beta_j to follow it (about twice the effective draws of h2 and G per sweep in
  ``benchmarks/mixing.py``), at the cost of one q x q Cholesky per column and grid point and of
  the statistics at every grid point.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .regression import sample_regression
from .variance import collapsed_h2_log_likelihood, sample_h2_index

__all__ = ["sample_columns"]


def sample_columns(
    key: PRNGKeyArray,
    re,
    y: Float[Array, "n c"],
    W: Float[Array, "n q"],
    h2_index: Int[Array, " c"],
    prior_precision: Float[Array, "q c"],
    tau_shape,
    tau_rate,
    n,
    n_flat: int,
    log_prior: Float[Array, " G"],
    collapsed: bool,
) -> tuple[Float[Array, "q c"], Float[Array, " c"], Int[Array, " c"], Float[Array, "r c"], Bool[Array, ""]]:
    """Draws (beta, tau, h2 index, random effects) of every column; returns them with factorisation_ok."""
    key_h2, key_coef, key_effects = jax.random.split(key, 3)
    if collapsed:
        gram_all, Wy_all, yy_all = re.regression_statistics_grid(y, W)
        log_likelihood = collapsed_h2_log_likelihood(
            gram_all, Wy_all, yy_all, re.log_det_V, prior_precision, tau_shape, tau_rate, n, n_flat
        )
        likelihood_ok = jnp.all(jnp.isfinite(log_likelihood))
        h2_index = sample_h2_index(key_h2, log_likelihood, log_prior)
        columns = jnp.arange(y.shape[1])
        statistics = (gram_all[h2_index], Wy_all[h2_index, columns], yy_all[h2_index, columns])
        coef, tau, ok = sample_regression(key_coef, *statistics, prior_precision, tau_shape, tau_rate, n, n_flat)
        ok = ok & likelihood_ok
        resid = y - W @ coef
    else:
        coef, tau, ok = sample_regression(
            key_coef, *re.regression_statistics(y, W, h2_index), prior_precision, tau_shape, tau_rate, n, n_flat
        )
        resid = y - W @ coef
        h2_index = sample_h2_index(key_h2, re.h2_log_likelihood(resid, tau), log_prior)
    return coef, tau, h2_index, re.sample_effects(key_effects, resid, h2_index, tau), ok
