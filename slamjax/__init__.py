"""slamjax: SLAMglmm, a Bayesian sparse-factor multi-trait mixed model, fitted by Gibbs sampling in JAX.

slamjax computes in float64 without switching float64 on for your process: its entry points
(``Model``, ``sample``, ``open_run``, ``Run.resume``/``predict``, ``cross_validate``, the CLI) run
inside ``jax.enable_x64(True)``, a thread-local setting restored on return, so
``jax.config.jax_enable_x64`` and your own JAX code are left as they were. Recorded draws are
NumPy float64 arrays; the JAX arrays slamjax holds (``model.data``, ``run.final_states``) are
float64 and need ``with jax.enable_x64(True):`` around your own computations with them.
``sample(..., dtype="float32")`` runs the sweeps in float32 (for GPUs; ``slamjax._dtype``).
"""

from . import datasets as datasets, priors as priors, relationship as relationship
from . import plot as plot
from . import observation as obs
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
