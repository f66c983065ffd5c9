"""Observation ("link") models: how the data inform the latent traits Eta (``sj.obs``).

``sj.Model(..., observation=...)`` takes one; ``observation._base`` gives the protocol for writing
your own.
"""

from ._base import ObservationModel as ObservationModel
from ._voom_weights import VoomWeights as VoomWeights, lowess as lowess, voom_weights as voom_weights
from .bspline import BSplineRegression as BSplineRegression
from .cis import CisGenotypes as CisGenotypes, cis_windows as cis_windows
from .combined import Combined as Combined
from .gaussian import Gaussian as Gaussian
from .probes import Probes as Probes
from .voom import Voom as Voom, filter_expressed as filter_expressed

__all__ = ["ObservationModel", "Gaussian", "Probes", "Voom", "BSplineRegression", "CisGenotypes", "Combined",
           "filter_expressed", "cis_windows", "voom_weights", "VoomWeights", "lowess"]
# the models a run store can keep and rebuild (``_plain``): their constructor arguments are plain data
BUILT_IN = ("Gaussian", "Probes", "Voom", "BSplineRegression", "CisGenotypes", "Combined")
