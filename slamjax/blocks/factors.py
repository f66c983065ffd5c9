"""Step 7: the factor scores F, row by row, in rotated coordinates.

Every row i of F (k factors) is independent given the rest:

    F_i ~ N(P^-1 (Lambda diag(tau / (1 - h2)) e_i + diag(tau_F / (1 - h2_F)) m_i), P^-1)
    P = Lambda diag(tau / (1 - h2)) Lambda' + diag(tau_F / (1 - h2_F))

with e_i the trait residual without the factors (Eta - X B - Z U_R) and m_i the factors'
own fixed and random part (X_F B_F + Z U_F). The orthogonal rotation leaves both residual
covariances (multiples of I) unchanged, so one k x k Cholesky serves all rows.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.linalg import cho_solve, solve_triangular
from .._random import normal
from jaxtyping import Array, Bool, Float, PRNGKeyArray

__all__ = ["sample_factor_scores"]


def sample_factor_scores(
    key: PRNGKeyArray,
    resid: Float[Array, "n p"],
    Lambda: Float[Array, "k p"],
    resid_precision: Float[Array, " p"],
    prior_mean: Float[Array, "n k"],
    prior_precision: Float[Array, " k"],
) -> tuple[Float[Array, "n k"], Bool[Array, ""]]:
    """Draws all rows of F; returns (F, factorisation_ok)."""
    weighted_Lambda = Lambda * resid_precision[None, :]
    precision = weighted_Lambda @ Lambda.T + jnp.diag(prior_precision)
    rhs = resid @ weighted_Lambda.T + prior_mean * prior_precision[None, :]
    chol = jnp.linalg.cholesky(precision)
    mean = cho_solve((chol, True), rhs.T).T
    noise = solve_triangular(chol.T, normal(key, rhs.shape).T, lower=False).T
    return mean + noise, jnp.all(jnp.isfinite(chol))
