"""RNA-seq counts through voom (Law et al. 2014): log2-cpm values with known precision weights,

    y_ij = Eta_ij + e_ij,   e_ij ~ N(0, 1 / w_ij),

y the log2-cpm of individual i and gene j and w_ij its voom weight (``_voom_weights``: the
package's own voom, which agrees with limma's to rounding). Step 9 draws each cell independently,

    Eta_ij | y ~ N((w_ij y_ij + mean_ij / v_j) / c_ij, 1 / c_ij),   c_ij = w_ij + 1 / v_j,

with v_j the trait's residual variance. The link has no parameters of its own.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import Array, Float

from .._errors import SlamjaxInputError
from .._random import normal
from ._base import ObservationModel, check_individuals
from ._voom_weights import voom_weights

__all__ = ["Voom", "filter_expressed"]


def filter_expressed(counts: pd.DataFrame, min_cpm: float = 1.0, min_samples: int = 3) -> pd.DataFrame:
    """The genes (columns) of ``counts`` (individuals x genes) with cpm > ``min_cpm`` in at least
    ``min_samples`` individuals, cpm computed with each individual's total count over all genes
    (the usual filter before voom, as edgeR's ``cpm(counts) > 1`` and ``rowSums(...) >= 3``)."""
    values = np.asarray(counts, dtype=float)
    cpm = values / values.sum(axis=1, keepdims=True) * 1e6
    keep = (cpm > min_cpm).sum(axis=0) >= min_samples
    return counts.loc[:, keep] if isinstance(counts, pd.DataFrame) else values[:, keep]


def _design_matrix(design, counts, n: int) -> np.ndarray:
    if design is None:
        return np.ones((n, 1))
    if isinstance(design, pd.DataFrame) and isinstance(counts, pd.DataFrame):
        if not design.index.equals(counts.index):
            if set(design.index) != set(counts.index) or not design.index.is_unique:
                raise SlamjaxInputError(
                    "design: its index must hold the individuals of counts' index, each once; align them, "
                    "e.g. design = design.loc[counts.index]"
                )
            design = design.loc[counts.index]
    try:
        X = np.asarray(design, dtype=float)
    except (TypeError, ValueError) as error:
        raise SlamjaxInputError(f"design: must be a numeric (individuals x columns) matrix: {error}") from None
    return X


class Voom(ObservationModel):
    """RNA-seq counts as log2-cpm with voom precision weights (``sj.obs.Voom(counts, design=...)``).

    Arguments:
        counts: (individuals x genes) read counts, a DataFrame or an array of non-negative
            integers (the package's orientation; limma takes genes x samples). Filter lowly
            expressed genes first (``sj.obs.filter_expressed``).
        design: the design of voom's per-gene linear fit (individuals x columns, full rank; a
            DataFrame is aligned to counts by index); an intercept only when None. Usually the
            model's fixed effects, e.g. ``formulaic.model_matrix("~ strain", data)``.
        lib_size: library sizes (default: each individual's total count over the genes given).
        norm_factors: normalisation factors (e.g. edgeR's TMM) multiplying the library sizes.
        span: the lowess span of voom's mean-variance trend (limma's default 0.5).
        logcpm, weights: instead of counts, log2-cpm values and weights computed elsewhere (e.g.
            limma's ``voom``), individuals x genes.

    ``.logcpm`` and ``.weights`` give voom's output (individuals x genes; DataFrames when counts
    was one); ``.trend`` the lowess mean-variance trend (x: mean log2 count, y: sqrt residual sd).
    """

    y: Float[Array, "n p"]  # log2-cpm
    w: Float[Array, "n p"]  # precision weights
    trend: Float[Array, "2 t"]
    individual_names: tuple | None = eqx.field(static=True)
    latent_names: tuple = eqx.field(static=True)

    individual_fields = ("y", "w")

    def __init__(self, counts=None, *, design=None, lib_size=None, norm_factors=None, span: float = 0.5,
                 logcpm=None, weights=None):
        if counts is not None:
            if logcpm is not None or weights is not None:
                raise SlamjaxInputError("counts and logcpm/weights: give counts, or voom's logcpm and weights")
            if isinstance(counts, pd.DataFrame):
                check_individuals("counts", counts.index)
            n = np.shape(counts)[0] if np.ndim(counts) == 2 else 0
            fit = voom_weights(counts, _design_matrix(design, counts, n), lib_size=lib_size,
                               norm_factors=norm_factors, span=span)
            labels = counts if isinstance(counts, pd.DataFrame) else None
            y, w = np.asarray(fit.logcpm, dtype=float), np.asarray(fit.weights, dtype=float)
            trend = np.stack([fit.trend_x, fit.trend_y])
        else:
            if logcpm is None or weights is None:
                raise SlamjaxInputError("counts: give the read counts (individuals x genes), or logcpm= and weights=")
            if any(v is not None for v in (design, lib_size, norm_factors)):
                raise SlamjaxInputError("design, lib_size, norm_factors: used with counts only, not with logcpm/weights")
            labels = logcpm if isinstance(logcpm, pd.DataFrame) else None
            if labels is not None:
                check_individuals("logcpm", labels.index)
                if isinstance(weights, pd.DataFrame) and not (
                        weights.index.equals(labels.index) and weights.columns.equals(labels.columns)):
                    raise SlamjaxInputError("weights: must have logcpm's index and columns, in the same order")
            try:
                y, w = np.asarray(logcpm, dtype=float), np.asarray(weights, dtype=float)
            except (TypeError, ValueError) as error:
                raise SlamjaxInputError(f"logcpm, weights: must hold numbers: {error}") from None
            if y.ndim != 2 or y.shape != w.shape:
                raise SlamjaxInputError(f"logcpm, weights: must be 2-D of one shape, got {y.shape} and {w.shape}")
            if not np.isfinite(y).all():
                raise SlamjaxInputError("logcpm: holds NaN or infinite values; voom gives a value for every cell")
            if not (np.isfinite(w).all() and (w > 0).all()):
                raise SlamjaxInputError("weights: must be finite and positive (precision weights)")
            trend = np.full((2, 1), np.nan)
        self.y, self.w, self.trend = y, w, trend
        self.individual_names = None if labels is None else tuple(labels.index)
        self.latent_names = tuple(labels.columns) if labels is not None else tuple(f"gene{j}" for j in range(y.shape[1]))

    def _frame(self, values):
        if self.individual_names is None:
            return np.asarray(values)
        return pd.DataFrame(np.asarray(values), index=pd.Index(self.individual_names),
                            columns=pd.Index(self.latent_names))

    @property
    def logcpm(self):
        return self._frame(self.y)

    @property
    def weights(self):
        return self._frame(self.w)

    def latent_start(self) -> np.ndarray:
        return np.asarray(self.y)

    def constructor_arguments(self) -> dict:
        """voom's output (the counts are not kept)."""
        return dict(logcpm=self.logcpm, weights=self.weights)

    def sample_latent(self, key, parameters, mean, resid_variance):
        """Eta_ij ~ N((w_ij y_ij + mean_ij / v_j) / c_ij, 1 / c_ij), c_ij = w_ij + 1 / v_j."""
        precision = self.w + 1.0 / resid_variance[None, :]
        centre = (self.w * self.y + mean / resid_variance[None, :]) / precision
        return centre + normal(key, mean.shape, mean.dtype) / jnp.sqrt(precision)

    def simulate(self, key, parameters, Eta):
        """y = Eta + N(0, 1 / w)."""
        return eqx.tree_at(lambda m: m.y, self, Eta + normal(key, Eta.shape, Eta.dtype) / jnp.sqrt(self.w))
