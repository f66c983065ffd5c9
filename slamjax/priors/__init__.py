"""Priors on coefficient blocks (loadings Lambda, fixed effects B and B_F)."""

from ._base import CoefficientPrior as CoefficientPrior
from .ard import ARD as ARD
from .mgps import MGPS as MGPS, Horseshoe as Horseshoe
from .tpb import TPB as TPB
from ._priors import Priors as Priors, VarianceComponent as VarianceComponent
