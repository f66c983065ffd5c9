"""Gaussian observations: y = Eta where observed; missing cells are drawn from the model,

    Eta_ij | rest ~ N(mean_ij, resid_variance_j)   for missing (i, j);   Eta_ij = y_ij otherwise,

with mean = X B + F Lambda + sum_m Z_m U_Rm. The model's default (``sj.Model(Y, ...)``); with
missing-data groups (``missing="groups"``) the sweep keeps its own path and only imputes the cells
the merge of groups left (``impute_missing``).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from .._random import normal
from ._base import ObservationModel, numeric_matrix

__all__ = ["Gaussian", "impute_missing"]


def impute_missing(
    key: PRNGKeyArray,
    fitted: Float[Array, "n p"],
    resid_variance: Float[Array, " p"],
    Y_filled: Float[Array, "n p"],
    observed: Bool[Array, "n p"],
) -> Float[Array, "n p"]:
    """Latent traits with observed cells kept and missing cells drawn from their conditional."""
    draw = fitted + jnp.sqrt(resid_variance)[None, :] * normal(key, fitted.shape, fitted.dtype)
    return jnp.where(observed, Y_filled, draw)


class Gaussian(ObservationModel):
    """y = Eta on the observed cells (NaN marks a missing cell, drawn each sweep).

    ``sj.obs.Gaussian(Y)``: Y an (n, p) array or a DataFrame (individuals x traits). What
    ``sj.Model(Y, ...)`` uses; give it explicitly to join Gaussian traits with other observation
    models in ``sj.obs.Combined``.
    """

    Y_filled: Float[Array, "n p"]  # data, 0 where missing
    observed: Bool[Array, "n p"]
    individual_names: tuple | None = eqx.field(static=True)  # None: rows in the model's order
    latent_names: tuple = eqx.field(static=True)
    complete: bool = eqx.field(static=True)

    individual_fields = ("Y_filled", "observed")

    def __init__(self, Y, *, individual_names=None, latent_names=None):
        values, frame = numeric_matrix(Y, "Y", "traits")
        observed = ~np.isnan(values)
        self.Y_filled = np.where(observed, values, 0.0)
        self.observed = observed
        n, p = values.shape
        self.individual_names = tuple(individual_names) if individual_names is not None else (
            None if frame is None else tuple(frame.index))
        self.latent_names = tuple(latent_names) if latent_names is not None else (
            tuple(frame.columns) if frame is not None else tuple(f"trait{j}" for j in range(p)))
        self.complete = bool(observed.all())

    @property
    def latent_is_data(self) -> bool:
        return self.complete

    def latent_start(self) -> np.ndarray:
        return np.where(np.asarray(self.observed), np.asarray(self.Y_filled), np.nan)

    def constructor_arguments(self) -> dict:
        if self.individual_names is None:
            return dict(Y=self.latent_start())
        return dict(Y=pd.DataFrame(self.latent_start(), index=pd.Index(self.individual_names),
                                   columns=pd.Index(self.latent_names)))

    def sample_latent(self, key, parameters, mean, resid_variance):
        """Observed cells: y; missing cells: N(mean_ij, resid_variance_j)."""
        return impute_missing(key, mean, resid_variance, self.Y_filled, self.observed)

    def simulate(self, key, parameters, Eta):
        """y = Eta on the observed cells."""
        return eqx.tree_at(lambda m: m.Y_filled, self, jnp.where(self.observed, Eta, 0.0))
