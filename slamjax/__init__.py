"""slamjax: SLAMglmm, a Bayesian sparse-factor multi-trait mixed model, fitted by Gibbs sampling in JAX."""

from . import datasets as datasets, priors as priors, relationship as relationship
from . import plot as plot
from ._errors import NumericalError as NumericalError, SlamjaxInputError as SlamjaxInputError
from .alignment import align_loadings as align_loadings, varimax as varimax
from .cross_validation import CrossValidation as CrossValidation, cross_validate as cross_validate
from .formula import wide as wide
from .gblup import GBLUPResult as GBLUPResult, gblup as gblup
from .grid import h2_grid as h2_grid
from .model import Model as Model
from .relationship import grm as grm, pedigree_relationship as pedigree_relationship
from .priors import Priors as Priors, VarianceComponent as VarianceComponent
from .run import Run as Run, open_run as open_run, sample as sample

__version__ = "0.1.0"
