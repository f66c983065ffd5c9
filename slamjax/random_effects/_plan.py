"""The random-effect plan of a model: which backend, how much memory, and the built decompositions.

``plan_random_effects`` is the one question a model asks: given the designs Z_m, covariances K_m,
the h2 grid and the missing-data setting, it picks the backend (``eigen``, ``cholesky`` or
``woodbury``) and the missing-data path, refuses a model whose fixed decompositions would not fit
in memory, and builds the decompositions and the rotation into the backend's coordinates.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax
import numpy as np

from .._errors import SlamjaxInputError
from ..missing import MissingDataGroup, build_missing_groups, choose_missing_path
from .cholesky import CholeskyRandomEffects, cholesky_random_effects, memory_estimate
from .eigen import EigenRandomEffect, eigen_random_effect
from .woodbury import (
    WoodburyRandomEffects,
    first_effect,
    grid_pairs,
    woodbury_memory_estimate,
    woodbury_random_effects,
)

if TYPE_CHECKING:
    from ..blocks.trait_groups import MissingGroups

__all__ = ["RandomEffectsPlan", "plan_random_effects"]

# A model may use at most this share of the device's memory for its fixed decompositions.
_MEMORY_SHARE = 0.6


@dataclass(frozen=True)
class RandomEffectsPlan:
    """What a model needs of its random effects, decided and built once."""

    backend: str  # "eigen", "cholesky" or "woodbury"
    random_effect: EigenRandomEffect | CholeskyRandomEffects | WoodburyRandomEffects
    rotation: np.ndarray  # (n, n) into the backend's coordinates: Q' (eigen, woodbury) or I (cholesky)
    missing_groups: list[MissingDataGroup] | None  # None: every missing cell imputed
    groups: MissingGroups | None  # the device data of the missing-data groups
    memory_bytes: int  # estimated bytes of the fixed decompositions on the device


def plan_random_effects(
    Zs: list[np.ndarray],
    Ks: list[np.ndarray],
    h2_grid: np.ndarray,
    *,
    effect_names: list[str],
    backend: str,
    missing: str,
    max_missing_groups: int,
    X: np.ndarray,
    Y_filled: np.ndarray,
    observed: np.ndarray,
    n_factors: int,
) -> RandomEffectsPlan:
    """Chooses, checks and builds the random-effect backend of a model.

    Arguments:
        Zs, Ks: the design (n, r_m) and covariance (r_m, r_m) of every random effect m.
        h2_grid: (G, R) variance proportions of every grid point.
        effect_names: the random effects' names, for error messages.
        backend: "auto", "eigen", "cholesky" or "woodbury" (see ``sj.Model``); "auto" takes eigen
            for one random effect, cholesky when ``missing="groups"``, else ``_cheaper_backend``.
        missing, max_missing_groups: the missing-data path ("auto", "groups" or "impute"; see
            ``slamjax.missing.choose_missing_path``). The woodbury backend always imputes.
        X: (n, b) fixed effects of the traits; Y_filled: (n, p) standardised data, 0 where
            missing; observed: (n, p) booleans. The grouped path rotates them per group.
        n_factors: k; the h2 draws keep work arrays for p + k columns.

    Raises ``SlamjaxInputError`` for a backend or missing-data setting the model cannot use and
    for decompositions that would not fit in the device's memory, before allocating them.
    """
    n, p = Y_filled.shape
    sizes = tuple(int(Z.shape[1]) for Z in Zs)
    _check_arguments(backend, missing, max_missing_groups, effect_names)
    if backend == "auto":
        if len(Zs) == 1:
            backend = "eigen"
        elif missing == "groups":
            backend = "cholesky"
        else:
            backend = _cheaper_backend(n, sizes, h2_grid, p + n_factors)
    if backend == "woodbury" and missing == "groups":
        raise SlamjaxInputError(
            "missing: 'groups' is not available with the woodbury backend; use missing='impute' "
            "(or 'auto'), or backend='cholesky'"
        )
    missing_groups = choose_missing_path(
        observed, "impute" if backend == "woodbury" else missing, int(max_missing_groups)
    )
    group_rows = [g.rows.size for g in missing_groups] if missing_groups else []
    n_pairs = grid_pairs(h2_grid, first_effect(sizes))[0].shape[0] if backend == "woodbury" else 0
    memory_bytes = _check_memory(backend, n, sizes, h2_grid.shape[0], p + n_factors, group_rows, n_pairs)

    groups = None
    if missing_groups is not None:
        groups, random_effect, rotation = build_missing_groups(
            missing_groups, backend, Zs, Ks, h2_grid, X, Y_filled, observed
        )
    elif backend == "eigen":
        random_effect = _cached_eigen_random_effect(Zs[0], Ks[0], h2_grid)
        rotation = np.asarray(random_effect.Q).T
    elif backend == "woodbury":
        random_effect = woodbury_random_effects(Zs, Ks, h2_grid)
        rotation = np.asarray(random_effect.Q).T
    else:
        random_effect = cholesky_random_effects(Zs, Ks, h2_grid)
        rotation = None
    if rotation is None:
        rotation = np.eye(n)
    return RandomEffectsPlan(
        backend=backend, random_effect=random_effect, rotation=rotation, missing_groups=missing_groups,
        groups=groups, memory_bytes=memory_bytes,
    )


def _check_arguments(backend: str, missing: str, max_missing_groups, effect_names: list[str]) -> None:
    """Refuses a backend or missing-data setting that is unknown or does not fit the random effects."""
    n_random = len(effect_names)
    if backend not in ("auto", "eigen", "cholesky", "woodbury"):
        raise SlamjaxInputError(
            f"backend: must be 'auto', 'eigen', 'cholesky' or 'woodbury', got {backend!r}"
        )
    if backend == "eigen" and n_random > 1:
        raise SlamjaxInputError(
            f"backend: 'eigen' handles one random effect, this model has {n_random} "
            f"({', '.join(effect_names)}); use backend='cholesky', 'woodbury' (or 'auto')"
        )
    if backend == "woodbury" and n_random == 1:
        raise SlamjaxInputError("backend: 'woodbury' needs two or more random effects; use 'eigen' (or 'auto')")
    if missing not in ("auto", "groups", "impute"):
        raise SlamjaxInputError(f"missing: must be 'auto', 'groups' or 'impute', got {missing!r}")
    if isinstance(max_missing_groups, bool) or not isinstance(max_missing_groups, (int, np.integer)) or (
        max_missing_groups < 1
    ):
        raise SlamjaxInputError(f"max_missing_groups: must be a positive integer, got {max_missing_groups!r}")


def _available_memory() -> int:
    """Bytes of memory of the default device (GPU limit, or physical memory on a CPU)."""
    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:  # noqa: BLE001 - backends without memory_stats
        stats = {}
    if "bytes_limit" in stats:
        return int(stats["bytes_limit"])
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _cheaper_backend(n: int, sizes: tuple[int, ...], grid: np.ndarray, n_columns: int = 0) -> str:
    """cholesky or woodbury, whichever whitens a column at every grid point with fewer operations;
    woodbury also when cholesky's decompositions would not fit in memory and woodbury's are smaller."""
    n_grid = grid.shape[0]
    S_rest = sum(sizes) - max(sizes)
    n_pairs = grid_pairs(grid, first_effect(sizes))[0].shape[0]
    woodbury = n_pairs * n * S_rest + n_grid * S_rest**2
    if woodbury < 0.5 * n_grid * n * n:
        return "woodbury"
    cholesky_bytes = memory_estimate(n, sizes, n_grid, n_columns)
    smaller = woodbury_memory_estimate(n, sizes, n_grid, n_pairs, n_columns) < cholesky_bytes
    return "woodbury" if smaller and cholesky_bytes > _MEMORY_SHARE * _available_memory() else "cholesky"


def _check_memory(
    backend: str, n: int, sizes: tuple[int, ...], n_grid: int, n_columns: int, group_rows: list[int] = (),
    n_pairs: int = 0,
) -> int:
    """The bytes the fixed decompositions need; refuses, before allocating, a model whose
    decompositions would not fit in memory.

    With missing-data groups every group holds its own decomposition of its rows.
    """
    if backend == "eigen":
        needed = 8 * (1 + len(group_rows)) * (max([n, *group_rows]) ** 2 + sizes[0] ** 2)
    elif backend == "woodbury":
        needed = woodbury_memory_estimate(n, sizes, n_grid, n_pairs, n_columns)
    else:  # groups are padded to the largest one
        needed = (1 + len(group_rows)) * memory_estimate(max([n, *group_rows]), sizes, n_grid, n_columns)
    available = _available_memory()
    if needed > _MEMORY_SHARE * available:
        raise SlamjaxInputError(
            f"memory: the {backend} backend needs about {needed / 2**30:.1f} GiB for its decompositions "
            f"({n_grid} grid points, n={n}, levels={sizes}, p={n_columns}) but the device has "
            f"{available / 2**30:.1f} GiB; use fewer h2_divisions (the grid has C(d - 1 + R, R) points), "
            "fewer random effects, backend='woodbury' when the effects other than the largest have few "
            "levels, or a GPU with more memory"
        )
    return needed


_EIGEN_CACHE: dict[bytes, EigenRandomEffect] = {}
_EIGEN_CACHE_SIZE = 2


def _cached_eigen_random_effect(Z: np.ndarray, K: np.ndarray, grid: np.ndarray) -> EigenRandomEffect:
    """The eigen backend of (Z, K, grid), reused while the same inputs come again: the models of
    cross-validation folds (``Model.masked`` on the imputation path) share one decomposition
    instead of redoing an O(n^3) SVD per fold. Keyed by a digest of the arrays' bytes."""
    digest = hashlib.blake2b(digest_size=32)
    for array in (Z, K, grid):
        array = np.ascontiguousarray(array, dtype=float)
        digest.update(repr(array.shape).encode())
        digest.update(array.tobytes())
    key = digest.digest()
    if key not in _EIGEN_CACHE:
        if len(_EIGEN_CACHE) >= _EIGEN_CACHE_SIZE:
            _EIGEN_CACHE.pop(next(iter(_EIGEN_CACHE)))
        _EIGEN_CACHE[key] = eigen_random_effect(Z, K, grid)[0]
    return _EIGEN_CACHE[key]
