"""Markers as fixed effects of the factors: priors for prediction (ARD, horseshoe, Bayesian lasso)
and for mapping (BayesC, BayesR, with inclusion probabilities), and their samplers.

    sj.Model(..., markers=genotypes, marker_prior="bayesc")
    sj.Model(..., markers=sj.markers.Markers(genotypes, missing="mean", map=marker_map, window=5.0),
             marker_prior=sj.markers.BayesC(a=1, b=99))

The factors then follow F = X_F B_F + M B_M + Z U_F + E_F: an m x k problem whatever the number of
traits, with each marker's effect on trait t the sum over factors of B_M[j, l] Lambda[l, t].
"""

from ._data import MarkerData as MarkerData, Markers as Markers
from .priors import (
    ARD as ARD,
    BayesC as BayesC,
    BayesianLasso as BayesianLasso,
    BayesR as BayesR,
    Horseshoe as Horseshoe,
    MarkerPrior as MarkerPrior,
)
from .sampler import marker_sampler_cost as marker_sampler_cost
