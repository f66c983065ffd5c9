"""Step 7: the factor scores F, row by row, in rotated coordinates.

Every row i of F (k factors) is independent given the rest:

    F_i ~ N(P^-1 (Lambda diag(tau / (1 - h2)) e_i + diag(tau_F / (1 - h2_F)) m_i), P^-1)
    P = Lambda diag(tau / (1 - h2)) Lambda' + diag(tau_F / (1 - h2_F))

with e_i the trait residual without the factors (Eta - X B - Z U_R) and m_i the factors'
own fixed and random part (X_F B_F + Z U_F). The orthogonal rotation leaves both residual
covariances (multiples of I) unchanged, so one k x k Cholesky serves all rows.
``sample_rows_given_precision`` draws rows given their precision; the missing-data path
(``blocks.trait_groups``) uses it with one precision per row.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from .._linalg import cholesky, cholesky_ok, solve_lower, solve_lower_transpose
from .._random import normal

__all__ = ["sample_factor_scores", "sample_rows_given_precision"]


def sample_rows_given_precision(
    key: PRNGKeyArray, precision: Float[Array, "*n k k"], rhs: Float[Array, "n k"]
) -> tuple[Float[Array, "n k"], Bool[Array, ""]]:
    """Independent rows x_i ~ N(P_i^-1 rhs_i, P_i^-1), with P_i = L_i L_i' (one k x k Cholesky):
    x_i = L_i'^-1 L_i^-1 rhs_i + L_i'^-1 z_i, z_i ~ N(0, I_k).

    ``precision`` is one P for every row (k, k) or one per row (n, k, k). Returns (x, factorisation_ok).
    """
    chol = cholesky(precision)
    mean = solve_lower_transpose(chol, solve_lower(chol, rhs))
    noise = solve_lower_transpose(chol, normal(key, rhs.shape, rhs.dtype))
    return mean + noise, jnp.all(cholesky_ok(chol))


def sample_factor_scores(
    key: PRNGKeyArray,
    resid: Float[Array, "n p"],
    Lambda: Float[Array, "k p"],
    resid_precision: Float[Array, " p"],
    prior_mean: Float[Array, "n k"],
    prior_precision: Float[Array, " k"],
) -> tuple[Float[Array, "n k"], Bool[Array, ""]]:
    """Draws all rows of F (one precision P for all rows); returns (F, factorisation_ok)."""
    weighted_Lambda = Lambda * resid_precision[None, :]
    precision = weighted_Lambda @ Lambda.T + jnp.diag(prior_precision)
    rhs = resid @ weighted_Lambda.T + prior_mean * prior_precision[None, :]
    return sample_rows_given_precision(key, precision, rhs)
