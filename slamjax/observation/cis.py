"""Expression traits with cis-acting markers: each gene its own local-marker regression, the trans
effects left to the factors (the seed's cis-eQTL case study).

    y_ig = Eta_ig + sum_w L_igw gamma_gw,   gamma_gw ~ N(0, phi v_g),   phi ~ InvGamma(a, b),

with L_g the centred genotypes of gene g's local markers (a window around the gene; windows padded
to the widest, W, and vmapped, as jaxQTL does), v_g = var(y_g) / W_g (so phi is about the share of a
gene's variance its cis markers explain a priori) and Eta the latent traits of the model, whose
factors carry the trans effects. Step 9 draws (gamma, Eta) jointly given the linear predictor mu
and the residual variances r_g of Eta, marginal over Eta:

    gamma_g | y, mu ~ N(A_g^-1 L_g'(y_g - mu_g) / r_g, A_g^-1),   A_g = L_g'L_g / r_g + I / (phi v_g),
    Eta_g = y_g - L_g gamma_g,

then phi | gamma ~ InvGamma(a + sum_g W_g / 2, b + sum_g |gamma_g|^2 / (2 v_g)). One W x W Cholesky per gene.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import Array, Bool, Float

from .._errors import SlamjaxInputError
from .._linalg import jitter
from .._random import normal
from ..priors._base import inverse_gamma_draw
from ._base import ObservationModel, numeric_matrix

__all__ = ["CisGenotypes", "cis_windows"]


def cis_windows(gene_positions: pd.DataFrame, marker_map: pd.DataFrame, window: float) -> dict:
    """{gene: [markers within ``window`` of the gene on its chromosome]} from gene positions and a
    marker map (both DataFrames with columns ``chromosome`` and ``position``, indexed by name)."""
    for name, frame in (("gene_positions", gene_positions), ("marker_map", marker_map)):
        if not isinstance(frame, pd.DataFrame) or not {"chromosome", "position"} <= set(frame.columns):
            raise SlamjaxInputError(f"{name}: must be a DataFrame with columns 'chromosome' and 'position'")
    out = {}
    chromosomes = marker_map["chromosome"].astype(str).to_numpy()
    positions = pd.to_numeric(marker_map["position"]).to_numpy()
    for gene, chromosome, position in zip(gene_positions.index, gene_positions["chromosome"].astype(str),
                                          pd.to_numeric(gene_positions["position"])):
        near = (chromosomes == chromosome) & (np.abs(positions - position) <= window)
        out[gene] = list(marker_map.index[near])
    return out


class CisGenotypes(ObservationModel):
    """Expression y (individuals x genes) with each gene's local (cis) markers as its own
    covariates (module docstring): ``sj.obs.CisGenotypes(y, genotypes, local)``.

    Arguments:
        y: individuals x genes (DataFrame or array), complete (impute or drop missing values).
        genotypes: individuals x markers (DataFrame with y's individuals, or an array in y's order).
        local: {gene: [marker names]} (``sj.obs.cis_windows`` builds it from positions); genes absent
            or with an empty list have no cis markers.
        prior_shape, prior_scale: the InvGamma prior of phi, the prior share of a gene's variance
            that its cis markers explain (mean scale / (shape - 1): 0.1 by default).

    Recorded per draw: ``cis_effect`` (trait, cis_slot): the effect of one more allele of each
    local marker, in y's units (``local_markers`` names the markers of each slot; padding slots are
    0); ``cis_variance`` phi.
    """

    y: Float[Array, "n p"]
    L: Float[Array, "p n W"]  # centred local genotypes per gene, zero-padded
    gram: Float[Array, "p W W"]
    valid: Bool[Array, "p W"]
    v: Float[Array, " p"]
    prior_shape: Float[Array, ""]
    prior_scale: Float[Array, ""]
    individual_names: tuple | None = eqx.field(static=True)
    latent_names: tuple = eqx.field(static=True)
    local_markers: tuple = eqx.field(static=True)  # per gene, the marker names of its slots

    individual_fields = ("y",)

    def __init__(self, y, genotypes, local: dict, *, prior_shape: float = 2.0, prior_scale: float = 0.1):
        values, frame = numeric_matrix(y, "y", "genes")
        if np.isnan(values).any():
            raise SlamjaxInputError("y: CisGenotypes needs complete expression data; impute or drop the missing values")
        genes = list(frame.columns) if frame is not None else list(range(values.shape[1]))
        n = values.shape[0]
        if isinstance(genotypes, pd.DataFrame):
            if frame is not None:
                absent = frame.index.difference(genotypes.index)
                if len(absent):
                    raise SlamjaxInputError(f"genotypes: {len(absent)} individuals of y have no genotypes (e.g. {list(absent[:5])})")
                genotypes = genotypes.loc[frame.index]
            marker_names = [str(c) for c in genotypes.columns]
            G = genotypes.to_numpy(dtype=float)
        else:
            G = np.asarray(genotypes, dtype=float)
            marker_names = [str(j) for j in range(G.shape[1])]
        if G.ndim != 2 or G.shape[0] != n:
            raise SlamjaxInputError(f"genotypes: must have one row per individual of y ({n}), got shape {G.shape}")
        if np.isnan(G).any():
            raise SlamjaxInputError("genotypes: contains missing values; impute them first")
        if not isinstance(local, dict):
            raise SlamjaxInputError("local: must be a dict {gene: [marker names]} (see sj.obs.cis_windows)")
        unknown_genes = [g for g in local if g not in genes]
        if unknown_genes:
            raise SlamjaxInputError(f"local: genes {unknown_genes[:5]} are not columns of y")
        lookup = {name: j for j, name in enumerate(marker_names)}
        columns = []
        for gene in genes:
            names = [str(m) for m in local.get(gene, [])]
            unknown = [m for m in names if m not in lookup]
            if unknown:
                raise SlamjaxInputError(f"local: markers {unknown[:5]} of gene {gene!r} are not columns of genotypes")
            centred = G[:, [lookup[m] for m in names]]
            centred = centred - centred.mean(axis=0)
            keep = centred.std(axis=0) > 1e-12  # a marker that does not vary carries no effect
            columns.append(([m for m, k in zip(names, keep) if k], centred[:, keep]))
        W = max(1, max(c.shape[1] for _, c in columns))
        L = np.zeros((len(genes), n, W))
        valid = np.zeros((len(genes), W), dtype=bool)
        for g, (_, c) in enumerate(columns):
            L[g, :, : c.shape[1]] = c
            valid[g, : c.shape[1]] = True
        for name, value in (("prior_shape", prior_shape), ("prior_scale", prior_scale)):
            if not np.isscalar(value) or not np.isfinite(value) or value <= 0:
                raise SlamjaxInputError(f"{name}: must be a positive number, got {value!r}")
        counts = np.maximum(valid.sum(axis=1), 1)
        self.y = values
        self.L = L
        self.gram = np.einsum("gni,gnj->gij", L, L)
        self.valid = valid
        self.v = values.var(axis=0, ddof=1) / counts
        self.prior_shape = np.asarray(float(prior_shape))
        self.prior_scale = np.asarray(float(prior_scale))
        self.individual_names = tuple(frame.index) if frame is not None else None
        self.latent_names = tuple(genes)
        self.local_markers = tuple(tuple(names) for names, _ in columns)

    def take_individuals(self, rows):
        rows = np.asarray(rows)
        moved = super().take_individuals(rows)
        object.__setattr__(moved, "L", np.asarray(self.L)[:, rows])
        return moved

    def latent_start(self) -> np.ndarray:
        return np.asarray(self.y, dtype=float)

    def constructor_arguments(self) -> dict:
        """y, the centred local genotypes (each marker once) and the windows: rebuilds this model."""
        L, columns = np.asarray(self.L), {}
        for g, markers in enumerate(self.local_markers):
            for w, marker in enumerate(markers):
                columns.setdefault(marker, L[g, :, w])
        index = pd.Index(self.individual_names) if self.individual_names is not None else None
        y = pd.DataFrame(np.asarray(self.y), index=index, columns=pd.Index(self.latent_names))
        genotypes = pd.DataFrame(columns, index=index)
        local = {gene: list(markers) for gene, markers in zip(self.latent_names, self.local_markers) if markers}
        return dict(y=y if index is not None else y.to_numpy(), genotypes=genotypes if index is not None else
                    genotypes.to_numpy(), local=local, prior_shape=float(self.prior_shape),
                    prior_scale=float(self.prior_scale))

    # ----------------------------------------------------------------- sweep
    def init_parameters(self):
        return {"gamma": jnp.zeros(self.valid.shape), "phi": self.prior_scale / self.prior_shape}

    def _cis(self, gamma):
        """sum_w L_igw gamma_gw: (n, p)."""
        return jnp.einsum("gnw,gw->ng", self.L, gamma)

    def sample_latent_and_parameters(self, key, parameters, mean, resid_variance):
        """(Eta, gamma) jointly given mu and r (module docstring), then phi | gamma."""
        key_gamma, key_phi = jax.random.split(key)
        prior_precision = jnp.where(self.valid, 1.0 / (parameters["phi"] * self.v[:, None]), 1.0)
        A = self.gram / resid_variance[:, None, None] + jax.vmap(jnp.diag)(prior_precision)
        chol = jnp.linalg.cholesky(jitter(A))
        rhs = jnp.einsum("gnw,ng->gw", self.L, self.y - mean) / resid_variance[:, None]
        centre = jax.scipy.linalg.cho_solve((chol, True), rhs[..., None])[..., 0]
        z = normal(key_gamma, rhs.shape, rhs.dtype)
        noise = jax.scipy.linalg.solve_triangular(jnp.swapaxes(chol, 1, 2), z[..., None], lower=False)[..., 0]
        gamma = jnp.where(self.valid, centre + noise, 0.0)
        parameters = self.sample_parameters(key_phi, {**parameters, "gamma": gamma}, None)
        return self.y - self._cis(gamma), parameters

    def sample_latent(self, key, parameters, mean, resid_variance):
        return self.sample_latent_and_parameters(key, parameters, mean, resid_variance)[0]

    def sample_parameters(self, key, parameters, Eta):
        """phi | gamma ~ InvGamma(a + (number of cis effects) / 2, b + sum gamma^2 / (2 v))."""
        gamma = parameters["gamma"]
        shape = self.prior_shape + 0.5 * jnp.sum(self.valid)
        rate = self.prior_scale + 0.5 * jnp.sum(jnp.where(self.valid, gamma**2 / self.v[:, None], 0.0))
        return {"gamma": gamma, "phi": inverse_gamma_draw(key, shape, rate)}

    def records(self, parameters):
        return {"cis_effect": parameters["gamma"], "cis_variance": parameters["phi"]}

    def record_dims(self):
        slots = tuple(f"cis{w}" for w in range(self.valid.shape[1]))
        return {"cis_effect": (("trait", self.latent_names), ("cis_slot", slots)), "cis_variance": ()}

    def sample_prior_parameters(self, key):
        key_phi, key_gamma = jax.random.split(key)
        phi = inverse_gamma_draw(key_phi, self.prior_shape, self.prior_scale)
        gamma = normal(key_gamma, self.valid.shape) * jnp.sqrt(phi * self.v[:, None])
        return {"gamma": jnp.where(self.valid, gamma, 0.0), "phi": phi}

    def simulate(self, key, parameters, Eta):
        """y = Eta + L gamma (no further noise: the residual of Eta is the noise)."""
        return eqx.tree_at(lambda m: m.y, self, Eta + self._cis(parameters["gamma"]))

    def cis_table(self, cis_draws: np.ndarray) -> pd.DataFrame:
        """Posterior summary of the cis effects from ``run.draws["cis_effect"]`` (chain, draw, gene,
        slot): one row per (gene, local marker) with mean, sd, 90 % interval and the posterior
        probability of the effect's sign (max of P(> 0), P(< 0))."""
        pooled = np.asarray(cis_draws).reshape((-1,) + np.shape(cis_draws)[2:])
        rows = []
        for g, (gene, markers) in enumerate(zip(self.latent_names, self.local_markers)):
            for w, marker in enumerate(markers):
                draws = pooled[:, g, w]
                positive = float(np.mean(draws > 0))
                rows.append(dict(gene=gene, marker=marker, mean=draws.mean(), sd=draws.std(ddof=1),
                                 lower=np.quantile(draws, 0.05), upper=np.quantile(draws, 0.95),
                                 sign_probability=max(positive, 1 - positive)))
        return pd.DataFrame(rows)
