"""The observation ("link") protocol: how data y inform the latent traits Eta of the model.

The model below the link is the same for every observation model (README "The model"):

    Eta = X B + F Lambda + sum_m Z_m U_Rm + E_R,   E_R rows ~ N(0, diag(resid_variance)),

and an observation model gives p(y | Eta, theta_obs) with parameters theta_obs of its own. In step
9 of each sweep the sampler asks it two questions, in the data's units and in the individuals'
order (the sweep converts to and from its own standardised, rotated coordinates):

    sample_latent(key, parameters, mean, resid_variance)
        Eta ~ p(Eta | y, theta_obs, rest) ∝ p(y | Eta, theta_obs) N(Eta; mean, diag(resid_variance))
    sample_parameters(key, parameters, Eta)
        theta_obs ~ p(theta_obs | y, Eta)

(through ``sample_latent_and_parameters``, which a model may override to draw both jointly)
and records ``records(parameters)`` with every draw. The sweep does not learn which model it runs.

Writing one (a page of code: see tests/test_observation_custom.py): subclass ``ObservationModel``
(an ``eqx.Module``: data arrays are fields, labels and settings static fields), set
``individual_names`` and ``latent_names`` (tuples), and implement ``latent_start`` and
``sample_latent``; models with parameters also implement ``init_parameters``,
``sample_parameters``, ``records`` and ``record_dims``. ``sample_prior_parameters`` and ``simulate``
let ``sj.datasets`` simulate and Geweke's test check the model.
"""

from __future__ import annotations

from typing import ClassVar

import copy

import equinox as eqx
import jax
import numpy as np
import pandas as pd
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from .._errors import SlamjaxInputError

__all__ = ["ObservationModel", "check_individuals", "numeric_matrix"]


class ObservationModel(eqx.Module):
    """An observation model: its data (fields), and the draws of step 9 of the sweep.

    Attributes every model sets (static fields): ``individual_names`` and ``latent_names``, tuples
    labelling the rows and the columns of Eta (n individuals x p latent traits);
    ``individual_names`` None: unlabelled rows, in the order of the model's individuals.
    """

    individual_names: eqx.AbstractVar[tuple]
    latent_names: eqx.AbstractVar[tuple]

    # array fields with the individuals on their first axis (``take_individuals`` reorders them)
    individual_fields: ClassVar[tuple[str, ...]] = ()

    @property
    def latent_is_data(self) -> bool:
        """True when Eta equals the data and never changes (complete Gaussian data): the sweep
        then skips step 9."""
        return False

    # ----------------------------------------------------------------- on the host, before sampling
    def latent_start(self) -> np.ndarray:
        """(n, p) starting values of Eta in the data's units (NaN: no information; the sampler
        starts such cells at the trait's mean). Also sets the standardisation of each latent trait
        (its mean and sd over the non-missing cells)."""
        raise NotImplementedError

    def take_individuals(self, rows: np.ndarray) -> ObservationModel:
        """The same model with its individuals in the order ``rows`` (positions into its own):
        the fields named in ``individual_fields`` (individuals on their first axis) are reordered."""
        rows = np.asarray(rows)
        moved = copy.copy(self)
        for name in self.individual_fields:
            object.__setattr__(moved, name, np.asarray(getattr(self, name))[rows])
        if self.individual_names is not None:
            object.__setattr__(moved, "individual_names", tuple(self.individual_names[i] for i in rows))
        return moved

    def constructor_arguments(self) -> dict:
        """Plain values (arrays, DataFrames, numbers, strings) that rebuild the model with
        ``type(model)(**arguments)``: what a run store keeps. Built-in models implement it."""
        raise SlamjaxInputError(
            f"store: a {type(self).__name__} observation model cannot be kept as plain data in a run store; "
            "run without store=, or use a built-in model (sj.obs)"
        )

    # ----------------------------------------------------------------- inside the compiled sweep
    def init_parameters(self) -> PyTree:
        """Starting values of the model's own parameters (a pytree of arrays; () for none)."""
        return ()

    def sample_latent(
        self, key: PRNGKeyArray, parameters: PyTree, mean: Float[Array, "n p"], resid_variance: Float[Array, " p"]
    ) -> Float[Array, "n p"]:
        """Eta ~ p(Eta | y, parameters) ∝ p(y | Eta, parameters) N(Eta; mean, diag(resid_variance))."""
        raise NotImplementedError

    def sample_parameters(self, key: PRNGKeyArray, parameters: PyTree, Eta: Float[Array, "n p"]) -> PyTree:
        """The model's parameters ~ p(parameters | y, Eta)."""
        return parameters

    def sample_latent_and_parameters(
        self, key: PRNGKeyArray, parameters: PyTree, mean: Float[Array, "n p"], resid_variance: Float[Array, " p"]
    ) -> tuple[Float[Array, "n p"], PyTree]:
        """Step 9 as the sweep calls it: (Eta, parameters). By default Eta by ``sample_latent``, then
        the parameters by ``sample_parameters`` given it (key ``fold_in(key, 1)``). A model whose
        parameters are better drawn marginal over Eta overrides it (``sj.obs.CisGenotypes``)."""
        Eta = self.sample_latent(key, parameters, mean, resid_variance)
        return Eta, self.sample_parameters(jax.random.fold_in(key, 1), parameters, Eta)

    def records(self, parameters: PyTree) -> dict[str, Array]:
        """Quantities recorded with every draw (on the data's scale), by name."""
        return {}

    def record_dims(self) -> dict[str, tuple[tuple[str, tuple], ...]]:
        """Per recorded name, its dims after (chain, draw): ((dim name, labels), ...)."""
        return {}

    # ----------------------------------------------------------------- simulation (Geweke's test)
    def sample_prior_parameters(self, key: PRNGKeyArray) -> PyTree:
        """The model's parameters from their prior."""
        return ()

    def simulate(self, key: PRNGKeyArray, parameters: PyTree, Eta: Float[Array, "n p"]) -> ObservationModel:
        """The same model with new data y ~ p(y | Eta, parameters) (its missing pattern kept)."""
        raise NotImplementedError(f"{type(self).__name__} does not simulate data")


def numeric_matrix(value, name: str, columns: str) -> tuple[np.ndarray, pd.DataFrame | None]:
    """(values as a float (individuals x ``columns``) array with NaN for missing, the DataFrame or
    None): refuses non-numbers, other than 2 dimensions, infinite values and repeated individuals."""
    frame = value if isinstance(value, pd.DataFrame) else None
    try:
        values = np.asarray(frame.to_numpy(dtype=float) if frame is not None else value, dtype=float)
    except (TypeError, ValueError) as error:
        raise SlamjaxInputError(f"{name}: must hold numbers (NaN for missing values): {error}") from None
    if values.ndim != 2:
        raise SlamjaxInputError(f"{name}: must be 2-D (individuals x {columns}), got {values.ndim}-D")
    if np.isinf(values).any():
        raise SlamjaxInputError(f"{name}: holds infinite values; mark missing values with NaN")
    if frame is not None:
        check_individuals(name, frame.index)
    return values, frame


def check_individuals(name: str, index: pd.Index) -> None:
    """Refuses repeated individual labels."""
    if not index.is_unique:
        repeated = list(dict.fromkeys(index[index.duplicated()]))[:5]
        raise SlamjaxInputError(f"{name}: its index repeats the individuals {repeated}; give each individual one row")
