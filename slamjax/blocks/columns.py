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

Each of the three draws reports whether it stayed finite (``COLUMN_STAGES``): the h2 draw whether
its log-likelihood at every grid point is finite (a NaN there would still give an index), the
regression whether its factorisation succeeded and (beta, tau) are finite with tau > 0, the random
effects whether they are finite.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .regression import sample_regression
from .variance import collapsed_h2_log_likelihood, sample_h2_index

__all__ = ["COLUMN_STAGES", "sample_columns"]

# the entries of the ``ok`` vector returned by ``sample_columns``
COLUMN_STAGES = ("h2", "regression", "random effects")


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
) -> tuple[Float[Array, "q c"], Float[Array, " c"], Int[Array, " c"], Float[Array, "r c"], Bool[Array, " 3"]]:
    """Draws (beta, tau, h2 index, random effects) of every column; returns them with ``ok``, one
    flag per stage of ``COLUMN_STAGES`` (True: that draw is finite)."""
    key_h2, key_coef, key_effects = jax.random.split(key, 3)
    if collapsed:
        gram_all, Wy_all, yy_all = re.regression_statistics_grid(y, W)
        log_likelihood = collapsed_h2_log_likelihood(
            gram_all, Wy_all, yy_all, re.log_det_V, prior_precision, tau_shape, tau_rate, n, n_flat
        )
        h2_ok = jnp.all(jnp.isfinite(log_likelihood))
        h2_index = sample_h2_index(key_h2, log_likelihood, log_prior)
        columns = jnp.arange(y.shape[1])
        statistics = (gram_all[h2_index], Wy_all[h2_index, columns], yy_all[h2_index, columns])
        coef, tau, factorised = sample_regression(
            key_coef, *statistics, prior_precision, tau_shape, tau_rate, n, n_flat
        )
        resid = y - W @ coef
    else:
        coef, tau, factorised = sample_regression(
            key_coef, *re.regression_statistics(y, W, h2_index), prior_precision, tau_shape, tau_rate, n, n_flat
        )
        resid = y - W @ coef
        log_likelihood = re.h2_log_likelihood(resid, tau)
        h2_ok = jnp.all(jnp.isfinite(log_likelihood))
        h2_index = sample_h2_index(key_h2, log_likelihood, log_prior)
    effects = re.sample_effects(key_effects, resid, h2_index, tau)
    regression_ok = factorised & jnp.all(jnp.isfinite(coef)) & jnp.all(jnp.isfinite(tau) & (tau > 0))
    ok = jnp.stack([h2_ok, regression_ok, jnp.all(jnp.isfinite(effects))])
    return coef, tau, h2_index, effects, ok
