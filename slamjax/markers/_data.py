"""Markers as the user gives them (``Markers``), checked and prepared for the sweep (``MarkerData``)."""

from __future__ import annotations

import dataclasses
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import Array, Float, Int

from .._errors import SlamjaxInputError
from .priors import MarkerPrior, marker_prior
from .sampler import MarkerBlocks, marker_blocks, marker_sampler_cost

__all__ = ["Markers", "MarkerData", "prepare_markers"]

SAMPLERS = ("auto", "single_site", "joint")


@dataclasses.dataclass(frozen=True)
class Markers:
    """Marker genotypes as fixed effects of the factors, with how to use them.

    genotypes: individuals x markers, 0/1/2 dosages or centred values (DataFrame aligned to the
        model's individuals by index, extra genotyped individuals ignored; or an array in the
        model's order). Markers are centred on the fitted individuals' means.
    missing: "error" (default) refuses missing genotypes; "mean" fills each with the marker's mean
        (after which it carries no information: impute with a dedicated tool first when many are missing).
    max_missing: with missing="mean", the largest share of missing genotypes a marker may have.
    map: DataFrame indexed by marker with columns ``chromosome`` and ``position`` (any unit), for
        window-level inclusion probabilities; ``window``: the window width in the map's unit.
    sampler: "single_site" (blocked, residual-updating; any prior), "joint" (Bhattacharya et al. 2016;
        Gaussian scale-mixture priors) or "auto": the cheaper by ``marker_sampler_cost`` on the
        default device (spike-and-slab priors always single_site).
    block_size: markers per block of the single-site sampler (default about sqrt(n)).
    """

    genotypes: object
    missing: str = "error"
    max_missing: float = 0.1
    map: pd.DataFrame | None = None
    window: float | None = None
    sampler: str = "auto"
    block_size: int | None = None

    def __post_init__(self):
        if self.missing not in ("error", "mean"):
            raise SlamjaxInputError(f"Markers.missing: must be 'error' or 'mean', got {self.missing!r}")
        if self.sampler not in SAMPLERS:
            raise SlamjaxInputError(f"Markers.sampler: must be one of {SAMPLERS}, got {self.sampler!r}")
        if (self.map is None) != (self.window is None):
            raise SlamjaxInputError("Markers.map and Markers.window: give both (a map and a window width) or neither")
        if self.window is not None and not (np.isfinite(self.window) and self.window > 0):
            raise SlamjaxInputError(f"Markers.window: must be a positive width in the map's unit, got {self.window!r}")


class MarkerData(eqx.Module):
    """What the sweep needs of the markers: the rotated, centred matrix (whole or in blocks), the
    prior, the sampler and the windows."""

    M: Float[Array, "n m"] | None  # rotated, centred (the joint sampler)
    blocks: MarkerBlocks | None  # the same, in blocks (the single-site sampler)
    prior: MarkerPrior
    window_index: Int[Array, " m"]  # window of each marker (0 when there is no map)
    sampler: str = eqx.field(static=True)
    n_windows: int = eqx.field(static=True)
    m: int = eqx.field(static=True)

    def product(self, effects: Float[Array, "m k"]) -> Float[Array, "n k"]:
        """M B_M (rows in the sweep's coordinates)."""
        if self.M is not None:
            return self.M @ effects
        nb, b, n = self.blocks.Mt.shape
        padded = jnp.pad(effects, ((0, nb * b - self.m), (0, 0)))
        return self.blocks.Mt.reshape(nb * b, n).T @ padded


@dataclasses.dataclass(frozen=True)
class PreparedMarkers:
    names: list[str]
    centred: np.ndarray  # n x m, the model's order of individuals, original coordinates
    means: np.ndarray  # (m,) the centring (for new genotypes)
    dropped: list[str]  # monomorphic markers left out
    window_index: np.ndarray
    window_names: list[str]


def prepare_markers(markers, individual_names: list[str]) -> PreparedMarkers:
    """Checks and aligns the genotypes to the model's individuals; centres them; drops markers
    without variation among the fitted individuals (with a warning)."""
    spec = markers if isinstance(markers, Markers) else Markers(markers)
    G = spec.genotypes
    n = len(individual_names)
    if isinstance(G, pd.DataFrame):
        if G.index.has_duplicates:
            raise SlamjaxInputError(f"markers: the index repeats individuals {list(G.index[G.index.duplicated()][:5])}; give each one row")
        index = G.index
        if not pd.Index(individual_names).isin(index).all():
            as_text = [str(i) for i in individual_names]  # labels may differ in type only (1 vs "1")
            if pd.Index(as_text).isin(index.astype(str)).all():
                index, individual_names = index.astype(str), as_text
            else:
                absent = pd.Index(individual_names).difference(index)
                raise SlamjaxInputError(
                    f"markers: {len(absent)} of the model's individuals have no genotypes (e.g. {list(absent[:5])}); "
                    "give a row for each (index = the individuals' labels)"
                )
        non_numeric = [c for c in G.columns if not pd.api.types.is_numeric_dtype(G[c])]
        if non_numeric:
            raise SlamjaxInputError(
                f"markers: columns {non_numeric[:5]} are not numeric; code genotypes as 0/1/2 dosages"
            )
        names = [str(c) for c in G.columns]
        values = G.set_axis(index, axis=0).loc[individual_names].to_numpy(dtype=float)
    else:
        values = np.asarray(G)
        if values.ndim != 2 or not np.issubdtype(values.dtype, np.number):
            raise SlamjaxInputError(f"markers: must be a numeric individuals x markers matrix, got shape {values.shape}")
        values = values.astype(float)
        if values.shape[0] != n:
            raise SlamjaxInputError(
                f"markers: has {values.shape[0]} rows but the model has {n} individuals; give one row per "
                "individual in the model's order, or a DataFrame indexed by individual"
            )
        names = [f"marker{j}" for j in range(values.shape[1])]
    if values.shape[1] == 0:
        raise SlamjaxInputError("markers: has no columns")
    if np.isinf(values).any():
        raise SlamjaxInputError("markers: contains infinite values")
    missing = np.isnan(values)
    if missing.any():
        if spec.missing == "error":
            where = np.argwhere(missing)[0]
            raise SlamjaxInputError(
                f"markers: {int(missing.sum())} genotypes are missing (first: individual {individual_names[where[0]]!r}, "
                f"marker {names[where[1]]!r}); impute them (e.g. with Beagle) or pass "
                "sj.markers.Markers(genotypes, missing='mean') to fill each with its marker's mean"
            )
        share = missing.mean(axis=0)
        if (share > spec.max_missing).any():
            bad = [names[j] for j in np.flatnonzero(share > spec.max_missing)]
            raise SlamjaxInputError(
                f"markers: {len(bad)} marker(s) miss more than max_missing={spec.max_missing:g} of their genotypes "
                f"(e.g. {bad[:5]}, {share.max():.0%} missing); impute them with a dedicated tool, drop them, or raise "
                "sj.markers.Markers(..., max_missing=...)"
            )
        column_means = np.nanmean(np.where(missing.all(axis=0)[None, :], 0.0, values), axis=0)
        values = np.where(missing, column_means[None, :], values)
    means = values.mean(axis=0)
    centred = values - means
    variable = centred.std(axis=0) > 1e-12
    dropped = [name for name, keep in zip(names, variable) if not keep]
    if dropped:
        warnings.warn(f"markers: {len(dropped)} marker(s) do not vary among the fitted individuals and are left out "
                      f"(e.g. {dropped[:5]})", stacklevel=3)
    if not variable.any():
        raise SlamjaxInputError("markers: no marker varies among the fitted individuals")
    kept = [name for name, keep in zip(names, variable) if keep]
    centred, means = centred[:, variable], means[variable]
    window_index, window_names = np.zeros(len(kept), dtype=np.int32), ["all"]
    if spec.map is not None:
        window_index, window_names = _windows(spec.map, kept, spec.window)
    return PreparedMarkers(kept, centred, means, dropped, window_index, window_names)


def _windows(marker_map: pd.DataFrame, names: list[str], width: float):
    """Window of each marker: consecutive windows of ``width`` along each chromosome."""
    if not isinstance(marker_map, pd.DataFrame) or not {"chromosome", "position"} <= set(marker_map.columns):
        raise SlamjaxInputError("Markers.map: must be a DataFrame indexed by marker with columns 'chromosome' and 'position'")
    mapped = marker_map.set_axis(marker_map.index.astype(str), axis=0)
    absent = pd.Index(names).difference(mapped.index)
    if len(absent):
        raise SlamjaxInputError(f"Markers.map: {len(absent)} markers have no map position (e.g. {list(absent[:5])})")
    positions = pd.to_numeric(mapped.loc[names, "position"], errors="coerce")
    if positions.isna().any():
        raise SlamjaxInputError("Markers.map: 'position' must be numeric for every marker")
    chromosome = mapped.loc[names, "chromosome"].astype(str).to_numpy()
    start = np.floor(positions.to_numpy() / width).astype(int)
    labels = [f"{c}:{int(s * width)}-{int((s + 1) * width)}" for c, s in zip(chromosome, start)]
    window_names = list(dict.fromkeys(labels))
    lookup = {name: i for i, name in enumerate(window_names)}
    return np.array([lookup[x] for x in labels], dtype=np.int32), window_names


def choose_sampler(requested: str, prior: MarkerPrior, n: int, m: int, k: int, block: int) -> tuple[str, dict]:
    """The marker sampler: the user's, or the cheaper by the cost model (single_site for spikes)."""
    costs = marker_sampler_cost(n, m, k, block, jax.default_backend())
    if requested == "joint" and prior.spike:
        raise SlamjaxInputError(
            f"Markers.sampler: 'joint' needs a Gaussian scale-mixture prior (ard, horseshoe, lasso); "
            f"{type(prior).__name__} has a spike at 0: use 'single_site' or 'auto'"
        )
    if requested != "auto":
        return requested, costs
    if prior.spike:
        return "single_site", costs
    return min(costs, key=costs.get), costs


def marker_data(prepared: PreparedMarkers, rotation: np.ndarray, prior, n_factors: int, sampler: str,
                block_size: int | None) -> tuple[MarkerData, dict]:
    """The sweep's marker data: M rotated by the random effect's rotation, the prior scaled to the
    markers, and the chosen sampler (with the cost model's figures)."""
    prior = marker_prior(prior)
    M = rotation @ prepared.centred
    n, m = M.shape
    prior = prior.with_markers(m, float(np.sum(prepared.centred.var(axis=0))))
    block = int(block_size) if block_size else max(8, int(round(np.sqrt(n))))
    chosen, costs = choose_sampler(sampler, prior, n, m, n_factors, block)
    data = MarkerData(
        M=jnp.asarray(M) if chosen == "joint" else None,
        blocks=marker_blocks(M, block) if chosen == "single_site" else None,
        prior=prior,
        window_index=jnp.asarray(prepared.window_index),
        sampler=chosen,
        n_windows=len(prepared.window_names),
        m=m,
    )
    return data, costs
