"""Missing-data groups: traits that share an observation pattern (MegaLMM's Missing_data_map).

Each group is a set of traits and the rows where they are observed. The sampler fits each group's
traits on those rows only, with the group's own rotation, so a missing cell is integrated out
instead of imputed every iteration. Exact grouping puts traits with identical patterns together;
``missing_data_groups`` then merges, greedily, the pair of groups whose union adds the fewest
imputed cells (cells in the union's rows where a trait is missing), until at most ``max_groups``
remain. Merged groups impute those few cells, as the plain path imputes all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MissingDataGroup", "build_missing_groups", "choose_missing_path", "missing_data_groups"]


@dataclass(frozen=True)
class MissingDataGroup:
    rows: np.ndarray  # int, the rows (individuals) the group's traits are fitted on
    traits: np.ndarray  # int, the group's traits (columns of Y)
    imputed_cells: int  # cells in rows x traits that are missing and imputed


def missing_data_groups(observed: np.ndarray, max_groups: int) -> list[MissingDataGroup]:
    """Groups the columns of ``observed`` (n x p, bool) into at most ``max_groups`` groups.

    Exact grouping first; then, while there are too many groups, the two whose merge imputes the
    fewest extra cells are merged (ties: the smaller groups first). Cost O(M0^2 n) for M0 exact
    patterns.
    """
    observed = np.asarray(observed, dtype=bool)
    patterns, trait_pattern = np.unique(observed.T, axis=0, return_inverse=True)
    trait_pattern = np.asarray(trait_pattern).reshape(-1)
    rows = [pattern.copy() for pattern in patterns]  # bool masks, one per group
    traits = [np.flatnonzero(trait_pattern == g) for g in range(len(patterns))]
    observed_cells = [int(observed[:, t][r].sum()) for r, t in zip(rows, traits)]
    while len(rows) > max_groups:
        masks = np.array(rows, dtype=np.float64)
        sizes = masks.sum(axis=1)
        union = sizes[:, None] + sizes[None, :] - masks @ masks.T
        n_traits = np.array([len(t) for t in traits], dtype=np.float64)
        cells = np.array(observed_cells, dtype=np.float64)
        imputed_now = sizes * n_traits - cells
        added = union * (n_traits[:, None] + n_traits[None, :]) - cells[:, None] - cells[None, :]
        added -= imputed_now[:, None] + imputed_now[None, :]
        added += 1e-9 * (n_traits[:, None] + n_traits[None, :])  # ties: merge small groups first
        np.fill_diagonal(added, np.inf)
        a, b = np.unravel_index(np.argmin(added), added.shape)
        a, b = min(a, b), max(a, b)
        rows[a] = rows[a] | rows[b]
        traits[a] = np.sort(np.concatenate([traits[a], traits[b]]))
        observed_cells[a] += observed_cells[b]
        del rows[b], traits[b], observed_cells[b]
    groups = []
    for mask, columns in zip(rows, traits):
        index = np.flatnonzero(mask)
        imputed = int((~observed[np.ix_(index, columns)]).sum())
        groups.append(MissingDataGroup(rows=index, traits=columns, imputed_cells=imputed))
    return sorted(groups, key=lambda g: int(g.traits[0]))


def choose_missing_path(observed: np.ndarray, missing: str, max_groups: int) -> list[MissingDataGroup] | None:
    """The groups to fit with, or None for the plain path (impute every missing cell).

    ``missing="auto"`` takes groups when at least 5 % of the cells are missing, grouping into at
    most ``max_groups`` groups leaves at most half of the missing cells imputed, and the groups'
    decompositions (M groups padded to N rows: M N^2 numbers per decomposition) are at most 4
    times the plain path's n^2; "groups" and "impute" force a path.
    """
    if missing == "impute":
        return None
    if missing == "groups":
        return missing_data_groups(observed, max_groups)
    n_missing = int((~observed).sum())
    if n_missing == 0:
        return None
    groups = missing_data_groups(observed, max_groups)
    imputed = sum(g.imputed_cells for g in groups)
    padded_size = len(groups) * max(g.rows.size for g in groups) ** 2
    if n_missing >= 0.05 * observed.size and imputed <= 0.5 * n_missing and padded_size <= 4 * observed.shape[0] ** 2:
        return groups
    return None


def build_missing_groups(
    groups: list[MissingDataGroup],
    backend: str,
    Zs: list[np.ndarray],
    Ks: list[np.ndarray],
    h2_grid: np.ndarray,
    X: np.ndarray,
    Y_filled: np.ndarray,
    observed: np.ndarray,
):
    """The device data of the grouped path: one decomposition of Z[O_m] per group, padded to the
    largest group's rows N and traits C and stacked.

    Returns (MissingGroups, the model's own backend for the factors, the rotation Q' of that
    backend as a numpy array, or None when it is the identity).
    """
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from .blocks.trait_groups import MissingGroups
    from .random_effects.cholesky import cholesky_random_effects
    from .random_effects.eigen import covariance_root, eigen_random_effect

    n, p = Y_filled.shape
    N = max(g.rows.size for g in groups)
    C = max(g.traits.size for g in groups)
    roots = [covariance_root(K) for K in Ks]
    if backend == "eigen":
        model_re, P = eigen_random_effect(Zs[0], None, h2_grid, L=roots[0])
        rotation = np.asarray(model_re.Q).T
    else:
        model_re = cholesky_random_effects(Zs, None, h2_grid, roots=roots)
        rotation = None
    backends, rows, traits, X_group, Y_group, to_group = [], [], [], [], [], []
    in_group = np.zeros((n, p))
    row_in_group = np.zeros((n, len(groups)))
    imputed = np.zeros((n, p), dtype=bool)
    for m, group in enumerate(groups):
        n_m, c_m = group.rows.size, group.traits.size
        if backend == "eigen":
            re, P_m = eigen_random_effect(Zs[0][group.rows], None, h2_grid, L=roots[0])
            Q_m = np.asarray(re.Q).T
            pad = N - n_m  # padded rows: Q = I and s = 1, so V = I at every h2
            Q_padded = jax.scipy.linalg.block_diag(re.Q, jnp.eye(pad))
            re = eqx.tree_at(lambda r: (r.Q, r.s), re, (Q_padded, jnp.concatenate([re.s, jnp.ones(pad)])))
            to_group.append(P_m.T @ P)
        else:
            re = cholesky_random_effects([Z[group.rows] for Z in Zs], None, h2_grid, roots=roots)
            Q_m = np.eye(n_m)
            pad = N - n_m  # padded rows: whitening I (V = I at every grid point) and no effects
            whiten = jax.vmap(lambda w: jax.scipy.linalg.block_diag(w, jnp.eye(pad)))(re.whiten_V)
            re = eqx.tree_at(lambda r: (r.whiten_V, r.ZL), re, (whiten, jnp.pad(re.ZL, ((0, pad), (0, 0)))))
            to_group.append(np.eye(re.ZL.shape[1]))
        backends.append(re)
        cells = np.ix_(group.rows, group.traits)
        rows.append(np.concatenate([group.rows, np.full(N - n_m, n)]))
        traits.append(np.concatenate([group.traits, np.full(C - c_m, p)]))
        X_m = np.zeros((N, X.shape[1]))
        X_m[:n_m] = Q_m @ X[group.rows]
        X_group.append(X_m)
        Y_m = np.zeros((N, C))
        Y_m[:n_m, :c_m] = Q_m @ Y_filled[cells]
        Y_group.append(Y_m)
        in_group[cells] = 1.0
        row_in_group[group.rows, m] = 1.0
        imputed[cells] = ~observed[cells]
    traits = np.array(traits)
    missing = MissingGroups(
        re=jax.tree.map(lambda *leaves: jnp.stack(leaves), *backends),
        rows=jnp.asarray(np.array(rows), dtype=jnp.int32),
        n_rows=jnp.asarray([float(g.rows.size) for g in groups]),
        traits=jnp.asarray(traits, dtype=jnp.int32),
        trait_mask=jnp.asarray((traits < p).astype(float)),
        X_group=jnp.asarray(np.array(X_group)),
        Y_group=jnp.asarray(np.array(Y_group)),
        to_group=jnp.asarray(np.array(to_group)),
        X=jnp.asarray(X),
        in_group=jnp.asarray(in_group),
        row_in_group=jnp.asarray(row_in_group),
        imputed=jnp.asarray(imputed),
        has_imputed=bool(imputed.any()),
    )
    return missing, model_re, rotation
