"""The complete prior specification of a model, as users give it."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .._errors import SlamjaxInputError
from ._base import CoefficientPrior
from .ard import ARD
from .mgps import MGPS

__all__ = ["Priors", "VarianceComponent"]


@dataclasses.dataclass(frozen=True)
class VarianceComponent:
    """Scaled inverse-chi-square prior on a variance, as in MCMCglmm: IW(V, nu).

    The precision (1 / variance) is Gamma(shape = nu / 2, rate = nu * V / 2); V is the prior
    guess of the variance (on the standardised scale when traits are scaled) and nu its weight.
    """

    V: float
    nu: float

    def __post_init__(self):
        for name in ("V", "nu"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise SlamjaxInputError(f"VarianceComponent.{name}: must be a positive number, got {value!r}")

    @property
    def shape(self) -> float:
        return self.nu / 2

    @property
    def rate(self) -> float:
        return self.nu * self.V / 2


@dataclasses.dataclass(frozen=True)
class Priors:
    """All priors of a SLAMglmm model (defaults follow MegaLMM).

    tot_Eta_var: total variance of each latent trait given the factors (traits are standardised).
    tot_F_var: total variance of each factor (parameter-expanded; divided out of recorded draws).
    Lambda: prior on the loadings (``MGPS()`` default, ``Horseshoe()`` or ``TPB()``), placed on the
        parameter-expanded loadings: the recorded loadings Lambda / sqrt(tot_F_prec) have this prior
        times a per-factor scale mixture (Student-t with tot_F_var's nu degrees of freedom and
        scale sqrt(V) given the prior's precision; see README "The model").
    B, B_F: priors on the fixed effects of the traits and the factors (ARD).
    h2, F_h2: prior weight of every h2 grid point for traits / factors: None (uniform), an
        array of weights, a function of the grid (G, R) -> (G,), or a list of R functions of
        one effect's h2 (independent marginals); see ``sj.h2_grid`` and ``slamjax.grid.h2_log_prior``.
    intercept_precision: tau-scaled prior precision of the trait intercept; 0 is flat.
    """

    tot_Eta_var: VarianceComponent = VarianceComponent(V=0.5, nu=5.0)
    tot_F_var: VarianceComponent = VarianceComponent(V=18 / 20, nu=20.0)
    Lambda: CoefficientPrior = dataclasses.field(default_factory=MGPS)
    B: CoefficientPrior = dataclasses.field(default_factory=ARD)
    B_F: CoefficientPrior = dataclasses.field(default_factory=ARD)
    h2: Any = None
    F_h2: Any = None
    intercept_precision: float = 0.0

    def __post_init__(self):
        for name in ("tot_Eta_var", "tot_F_var"):
            if not isinstance(getattr(self, name), VarianceComponent):
                raise SlamjaxInputError(f"Priors.{name}: must be a VarianceComponent(V=..., nu=...)")
        for name in ("Lambda", "B", "B_F"):
            if not isinstance(getattr(self, name), CoefficientPrior):
                raise SlamjaxInputError(
                    f"Priors.{name}: must be a prior object such as sj.priors.MGPS() or sj.priors.ARD(), "
                    f"got {type(getattr(self, name)).__name__}"
                )
        if not np.isfinite(self.intercept_precision) or self.intercept_precision < 0:
            raise SlamjaxInputError("Priors.intercept_precision: must be >= 0 (0 = flat prior)")

    @property
    def n_flat(self) -> int:
        return int(self.intercept_precision == 0)

    def _repr_html_(self) -> str:
        """Jupyter's display: every prior with what it means (``_display``)."""
        from .._display import priors_html

        return priors_html(self)

    def __repr__(self) -> str:
        lines = ["Priors("]
        for field in dataclasses.fields(self):
            lines.append(f"    {field.name}={_describe(getattr(self, field.name))},  # {_MEANING[field.name]}")
        lines.append(")")
        return "\n".join(lines)


_MEANING = {
    "tot_Eta_var": "variance of each standardised trait not explained by the factors (1/tau): tau ~ Gamma(nu/2, nu V/2)",
    "tot_F_var": "total variance of each factor (parameter expansion): precision ~ Gamma(nu/2, nu V/2)",
    "Lambda": "loadings k x p, prior precision tau_j x this prior's precision (recorded Lambda / sqrt(tot_F_prec): "
              "times a per-factor scale mixture, tot_F_prec ~ Gamma(nu/2, nu V/2) of tot_F_var)",
    "B": "trait fixed effects (all but the intercept)",
    "B_F": "factor fixed effects",
    "h2": "weights of the trait h2 grid points",
    "F_h2": "weights of the factor h2 grid points",
    "intercept_precision": "tau-scaled prior precision of the trait intercept (0 = flat)",
}


def _describe(value) -> str:
    """A repr that shows every hyperparameter, defaults included."""
    if value is None:
        return "None (uniform)"
    if dataclasses.is_dataclass(value):
        inner = ", ".join(f"{f.name}={getattr(value, f.name)!r}" for f in dataclasses.fields(value))
        return f"{type(value).__name__}({inner})"
    if callable(value):
        return f"<function {getattr(value, '__name__', repr(value))}>"
    if isinstance(value, (list, tuple)) and value and all(callable(f) for f in value):
        return "independent marginals (" + ", ".join(getattr(f, "__name__", "function") for f in value) + ")"
    if isinstance(value, (np.ndarray, list, tuple)):
        return f"array of {len(value)} weights"
    return repr(value)


