"""Several probes per gene (expression arrays): the latent traits are genes, the data probes,

    y_im = Eta_{i, g(m)} + e_im,   e_im ~ N(0, sigma2_m),   sigma2_m ~ InvGamma(a, b_m),

with g(m) the gene of probe m, a probe-specific technical variance sigma2_m, and b_m = scale x the
observed variance of probe m (a prior on each probe's own scale). Missing probe values drop out of
the likelihood. Step 9 draws, for every (i, j), independently

    Eta_ij | y, sigma2 ~ N(m_ij / c_ij, 1 / c_ij),
        c_ij = 1 / v_j + sum_{m in j, observed} 1 / sigma2_m,
        m_ij = mean_ij / v_j + sum_{m in j, observed} y_im / sigma2_m        (v_j the residual variance),

(the sums are segment sums over the probes of each gene), then

    sigma2_m | y, Eta ~ InvGamma(a + n_m / 2, b_m + sum_{i observed} (y_im - Eta_{i, g(m)})^2 / 2).

Probe offsets: probes of one gene differ in affinity. With ``center_probes`` (default) each probe
is centred on its observed mean and moved to the mean of its gene's probe means, so the gene's
level stays in Eta and the probe offsets (estimated once, by their means) leave the noise.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import Array, Bool, Float, Int

from .._errors import SlamjaxInputError
from .._random import normal
from ..priors._base import inverse_gamma_draw
from ._base import ObservationModel, numeric_matrix

__all__ = ["Probes"]


def _gene_map(probe_to_gene, probe_names: list) -> tuple[np.ndarray, list]:
    """(gene index of each probe, gene labels in order of first appearance)."""
    if isinstance(probe_to_gene, dict):
        probe_to_gene = pd.Series(probe_to_gene)
    if isinstance(probe_to_gene, pd.Series):
        missing = [name for name in probe_names if name not in probe_to_gene.index]
        if missing:
            raise SlamjaxInputError(
                f"probe_to_gene: has no gene for {len(missing)} probe(s) of y, e.g. {missing[:5]}; map every "
                "column of y to its gene (or drop those probes from y)"
            )
        genes = probe_to_gene.loc[probe_names].to_numpy()
    else:
        genes = np.asarray(probe_to_gene)
        if genes.ndim != 1 or genes.shape[0] != len(probe_names):
            raise SlamjaxInputError(
                f"probe_to_gene: must give one gene per probe (column of y): {len(probe_names)} values, got "
                f"shape {genes.shape}; or pass a Series / dict from probe name to gene"
            )
    if pd.isna(genes).any():
        where = [probe_names[i] for i in np.flatnonzero(pd.isna(genes))[:5]]
        raise SlamjaxInputError(f"probe_to_gene: the probes {where} have no gene (NaN); map every probe")
    labels, index = np.unique(genes.astype(str) if genes.dtype.kind == "O" else genes, return_inverse=True)
    order = np.argsort([np.flatnonzero(index == g)[0] for g in range(len(labels))])  # first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[index].astype(np.int32), [labels[g].item() if hasattr(labels[g], "item") else labels[g] for g in order]


class Probes(ObservationModel):
    """Gene-level latent traits measured by several probes each (``sj.obs.Probes(y, probe_to_gene)``).

    Arguments:
        y: (individuals x probes) DataFrame or array; NaN marks a missing value.
        probe_to_gene: the gene of each probe: a Series or dict from probe (y's column) to gene,
            or a sequence of gene labels or integers, one per column of y. Genes are the latent
            traits, in the order they first appear among y's columns.
        variance_shape, variance_scale: the inverse-gamma prior of each probe's technical
            variance, InvGamma(shape, scale x observed variance of the probe) (prior mean
            scale / (shape - 1) of the probe's variance: 0.1 by default).
        center_probes: centre each probe on its mean and move it to its gene's mean of probe
            means (removes probe affinity offsets; see the module docstring).

    Recorded per draw: ``probe_variance`` (probe), in y's units.
    """

    y: Float[Array, "n m"]  # 0 where missing
    observed: Bool[Array, "n m"]
    gene: Int[Array, " m"]  # the latent trait of each probe
    prior_rate: Float[Array, " m"]
    prior_shape: Float[Array, ""]
    individual_names: tuple | None = eqx.field(static=True)
    latent_names: tuple = eqx.field(static=True)
    probe_names: tuple = eqx.field(static=True)
    variance_scale: float = eqx.field(static=True)

    individual_fields = ("y", "observed")

    def __init__(self, y, probe_to_gene, *, variance_shape: float = 2.0, variance_scale: float = 0.1,
                 center_probes: bool = True):
        values, frame = numeric_matrix(y, "y", "probes")
        probe_names = list(frame.columns) if frame is not None else list(range(values.shape[1]))
        for name, value in (("variance_shape", variance_shape), ("variance_scale", variance_scale)):
            if not np.isscalar(value) or not np.isfinite(value) or value <= 0:
                raise SlamjaxInputError(f"{name}: must be a positive number, got {value!r}")
        gene, genes = _gene_map(probe_to_gene, probe_names)
        observed = ~np.isnan(values)
        counts = observed.sum(axis=0)
        if (counts < 2).any():
            bad = [probe_names[i] for i in np.flatnonzero(counts < 2)[:5]]
            raise SlamjaxInputError(f"y: the probes {bad} have fewer than 2 observed values; drop them from y")
        if center_probes:
            probe_mean = np.nanmean(values, axis=0)
            gene_level = np.bincount(gene, weights=probe_mean) / np.bincount(gene)
            values = values - probe_mean + gene_level[gene]
        probe_var = np.nanvar(values, axis=0, ddof=1)  # after centring: a store rebuilds the same model
        if not (probe_var > 0).all():
            bad = [probe_names[i] for i in np.flatnonzero(~(probe_var > 0))[:5]]
            raise SlamjaxInputError(f"y: the probes {bad} are constant; drop them from y")
        self.y = np.where(observed, values, 0.0)
        self.observed = observed
        self.gene = gene
        self.prior_rate = variance_scale * probe_var
        self.prior_shape = np.asarray(float(variance_shape))
        self.individual_names = tuple(frame.index) if frame is not None else None
        self.latent_names = tuple(genes)
        self.probe_names = tuple(probe_names)
        self.variance_scale = float(variance_scale)

    # ----------------------------------------------------------------- host
    def _segment_sum(self, x):
        """Sums over the probes of each gene: (n, m) -> (n, p)."""
        return jax.ops.segment_sum(x.T, self.gene, num_segments=len(self.latent_names)).T

    def latent_start(self) -> np.ndarray:
        y, observed = np.asarray(self.y), np.asarray(self.observed)
        p = len(self.latent_names)
        total = np.zeros((y.shape[0], p))
        count = np.zeros((y.shape[0], p))
        np.add.at(total.T, np.asarray(self.gene), y.T)
        np.add.at(count.T, np.asarray(self.gene), observed.T.astype(float))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / count, np.nan)

    def constructor_arguments(self) -> dict:
        """The centred data (``center_probes=False``: centring twice would round differently)."""
        y = np.where(np.asarray(self.observed), np.asarray(self.y), np.nan)
        genes = [self.latent_names[g] for g in np.asarray(self.gene)]
        if self.individual_names is not None:
            y = pd.DataFrame(y, index=pd.Index(self.individual_names), columns=pd.Index(self.probe_names))
            genes = pd.Series(genes, index=pd.Index(self.probe_names))
        return dict(y=y, probe_to_gene=genes, variance_shape=float(self.prior_shape),
                    variance_scale=self.variance_scale, center_probes=False)

    # ----------------------------------------------------------------- sweep
    def init_parameters(self):
        """Each probe's variance started at rate / shape (between the prior's mode and mean)."""
        return {"variance": self.prior_rate / self.prior_shape}

    def sample_latent(self, key, parameters, mean, resid_variance):
        """Eta_ij ~ N(m_ij / c_ij, 1 / c_ij) (module docstring): one normal per cell."""
        probe_precision = jnp.where(self.observed, 1.0 / parameters["variance"][None, :], 0.0)
        precision = 1.0 / resid_variance[None, :] + self._segment_sum(probe_precision)
        shift = mean / resid_variance[None, :] + self._segment_sum(probe_precision * self.y)
        return shift / precision + normal(key, mean.shape, mean.dtype) / jnp.sqrt(precision)

    def sample_parameters(self, key, parameters, Eta):
        """sigma2_m ~ InvGamma(a + n_m / 2, b_m + sum_i observed (y_im - Eta_i,g(m))^2 / 2)."""
        residual = jnp.where(self.observed, self.y - Eta[:, self.gene], 0.0)
        shape = self.prior_shape + 0.5 * jnp.sum(self.observed, axis=0).astype(Eta.dtype)
        rate = self.prior_rate + 0.5 * jnp.sum(residual**2, axis=0)
        return {"variance": inverse_gamma_draw(key, shape, rate)}

    def records(self, parameters):
        return {"probe_variance": parameters["variance"]}

    def record_dims(self):
        return {"probe_variance": (("probe", self.probe_names),)}

    def sample_prior_parameters(self, key):
        return {"variance": inverse_gamma_draw(key, self.prior_shape, self.prior_rate)}

    def simulate(self, key, parameters, Eta):
        """y_im = Eta_i,g(m) + N(0, sigma2_m) on the observed cells (0 elsewhere)."""
        y = Eta[:, self.gene] + jnp.sqrt(parameters["variance"])[None, :] * normal(key, self.y.shape, Eta.dtype)
        return eqx.tree_at(lambda m: m.y, self, jnp.where(self.observed, y, 0.0))
