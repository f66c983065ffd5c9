"""Steps 1-3 and 7 on missing-data groups: each group's traits fitted on the rows they are observed in.

A group m has rows O_m and traits T_m (see ``slamjax.missing``) and its own random-effect
decomposition of Z[O_m] (its own rotation Q_m for the ``eigen`` backend). For every trait j in T_m,
steps 1-3 are the plain steps on y = Eta[O_m, j]:

    [B_.j; Lambda_.j], tau_j | h2_j, F  on (X[O_m], F[O_m]) marginal over U_R,
    h2_j | ...  over all grid points, marginal over U_R,   U_.j | ...,

so a missing cell is integrated out, not imputed. Random effects of all groups are held in the
coordinates of the model's backend (``to_group`` maps them into a group's own), so that records,
running means and the factor level are the plain path's. Latent traits Eta are held in original
coordinates; cells of a group's rows where its traits are missing (left by merging patterns) are
imputed as in the plain path, other missing cells are not used.

Step 7 then draws each row of F given only the traits observed in that row:

    F_i ~ N(P_i^-1 (sum_{j in obs(i)} w_j Lambda_.j e_ij + diag(s_F) m_i), P_i^-1),
    P_i = sum_{m: i in O_m} Lambda_.T_m diag(w_T_m) Lambda_.T_m' + diag(s_F),

with w = tau / (1 - sum h2) and s_F = tau_F / (1 - sum h2_F); one k x k Cholesky per row.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from ..random_effects.cholesky import CholeskyRandomEffects
from ..random_effects.eigen import EigenRandomEffect
from .columns import sample_columns
from .factors import sample_rows_given_precision

__all__ = ["MissingGroups", "sample_factor_scores_by_row", "sample_trait_groups"]


class MissingGroups(eqx.Module):
    """The groups, padded to N rows and C traits and stacked on a leading group axis (M).

    Padded rows hold zeros and have V = I at every grid point (no log-determinant, no data);
    padded rows/traits index one extra zero row n / dummy column p, which results never keep.
    """

    re: EigenRandomEffect | CholeskyRandomEffects  # stacked: each leaf has a leading group axis
    rows: Int[Array, "M N"]
    n_rows: Float[Array, " M"]
    traits: Int[Array, "M C"]
    trait_mask: Float[Array, "M C"]
    X_group: Float[Array, "M N b"]  # in each group's coordinates
    Y_group: Float[Array, "M N C"]  # standardised data in each group's coordinates
    to_group: Float[Array, "M r r"]  # model coordinates of the random effects -> each group's
    X: Float[Array, "n b"]  # fixed effects in original coordinates
    in_group: Float[Array, "n p"]  # 1 where row i is among the rows of trait j's group
    row_in_group: Float[Array, "n M"]  # 1 where row i is among the rows of group m
    imputed: Bool[Array, "n p"]  # missing cells inside a group's rows: imputed
    has_imputed: bool = eqx.field(static=True)


def _pad(x: Float[Array, "n c"]) -> Float[Array, "n+1 c+1"]:
    """x with one extra zero row and column (the targets of padded indices)."""
    return jnp.pad(x, ((0, 1), (0, 1)))


def sample_trait_groups(
    key: PRNGKeyArray,
    Eta: Float[Array, "n p"],
    F: Float[Array, "n k"],
    h2_index: Int[Array, " p"],
    prior_precision: Float[Array, "q p"],
    missing: MissingGroups,
    tau_shape,
    tau_rate,
    n_flat: int,
    log_prior: Float[Array, " G"],
    collapsed: bool,
):
    """Steps 1-3 for every group at once (vmapped over groups). ``Eta`` and ``F`` in original
    coordinates. Returns (coef (q, p), tau, h2_index, U_R in model coordinates, ok): ``ok`` as in
    ``sample_columns``, over all groups."""
    p = prior_precision.shape[1]
    Eta_padded = _pad(Eta)
    F_padded = jnp.pad(F, ((0, 1), (0, 0)))
    h2_padded = jnp.pad(h2_index, (0, 1))
    prior_padded = jnp.pad(prior_precision, ((0, 0), (0, 1)), constant_values=1.0)

    def one_group(key, re, rows, n_rows, traits, X, Y, to_group):
        y = re.rotate(Eta_padded[rows][:, traits]) if missing.has_imputed else Y
        W = jnp.concatenate([X, re.rotate(F_padded[rows])], axis=1)
        coef, tau, h2, effects, ok = sample_columns(
            key, re, y, W, h2_padded[traits], prior_padded[:, traits], tau_shape, tau_rate, n_rows, n_flat,
            log_prior, collapsed,
        )
        return coef, tau, h2, to_group.T @ effects, ok

    M = missing.rows.shape[0]
    coef, tau, h2, U_R, ok = jax.vmap(one_group)(
        jax.random.split(key, M), missing.re, missing.rows, missing.n_rows, missing.traits,
        missing.X_group, missing.Y_group, missing.to_group,
    )
    columns = missing.traits.reshape(-1)  # padded traits write to the dummy column p

    def scatter(values, size):  # (M, ..., C) -> (..., p)
        flat = jnp.moveaxis(values, 0, -2).reshape(*values.shape[1:-1], -1)
        return jnp.zeros((*values.shape[1:-1], size + 1), values.dtype).at[..., columns].set(flat)[..., :size]

    return scatter(coef, p), scatter(tau, p), scatter(h2, p), scatter(U_R, p), jnp.all(ok, axis=0)


def sample_factor_scores_by_row(
    key: PRNGKeyArray,
    resid: Float[Array, "n p"],
    Lambda: Float[Array, "k p"],
    resid_precision: Float[Array, " p"],
    prior_mean: Float[Array, "n k"],
    prior_precision: Float[Array, " k"],
    missing: MissingGroups,
) -> tuple[Float[Array, "n k"], Bool[Array, ""]]:
    """Draws every row of F (original coordinates) from the traits observed in that row."""
    weighted = Lambda * resid_precision[None, :]
    Lambda_groups = jnp.pad(Lambda, ((0, 0), (0, 1)))[:, missing.traits] * missing.trait_mask[None]  # (k, M, C)
    weighted_groups = jnp.pad(weighted, ((0, 0), (0, 1)))[:, missing.traits]
    per_group = jnp.einsum("amc,bmc->mab", weighted_groups, Lambda_groups)  # (M, k, k)
    precision = jnp.einsum("nm,mab->nab", missing.row_in_group, per_group) + jnp.diag(prior_precision)[None]
    rhs = (resid * missing.in_group) @ weighted.T + prior_mean * prior_precision[None, :]
    return sample_rows_given_precision(key, precision, rhs)
