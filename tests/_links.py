"""A tiny model observed through every built-in link at once (``sj.obs.Combined``): probes of two
genes (one with a missing value per probe), two voom genes and one Gaussian trait with missing
cells. Shared by tests/test_observation.py (closed forms, Geweke) and tests/test_power.py."""

from __future__ import annotations

import numpy as np
import pandas as pd

import slamjax as sj
from _models import random_design


def link_parts(n: int = 30, seed: int = 0):
    """(probes, voom, gaussian) observation models of n individuals."""
    rng = np.random.default_rng(seed)
    individuals = [f"i{i}" for i in range(n)]
    probe_genes = ["gA", "gA", "gA", "gB", "gB"]
    y = pd.DataFrame(rng.normal(size=(n, 5)), index=individuals, columns=[f"probe{m}" for m in range(5)])
    for m in range(5):
        y.iloc[(3 * m + 2) % n, m] = np.nan
    probes = sj.obs.Probes(y, pd.Series(probe_genes, index=y.columns), variance_shape=3.0, variance_scale=0.5,
                           center_probes=False)
    logcpm = pd.DataFrame(rng.normal(size=(n, 2)), index=individuals, columns=["vA", "vB"])
    weights = pd.DataFrame(rng.uniform(0.5, 4.0, size=(n, 2)), index=individuals, columns=["vA", "vB"])
    voom = sj.obs.Voom(logcpm=logcpm, weights=weights)
    trait = pd.DataFrame(rng.normal(size=(n, 1)), index=individuals, columns=["fitness"])
    trait.iloc[rng.random(n) < 0.2, 0] = np.nan
    return probes, voom, sj.obs.Gaussian(trait)


def link_model(n: int = 30, k: int = 3, seed: int = 0) -> sj.Model:
    """The three links combined under a tiny model (as tests/_models.tiny_model: one covariate for
    the traits and one for the factors, a proper intercept prior, no standardisation)."""
    rng = np.random.default_rng(seed + 100)
    Z, K = random_design(n, n, seed)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    X_F = rng.normal(size=(n, 1))
    observation = sj.obs.Combined(link_parts(n, seed), names=["probes", "voom", "gaussian"])
    return sj.Model(observation=observation, X=X, X_F=X_F, Z=Z, K=K, n_factors=k, h2_divisions=5,
                    priors=sj.Priors(intercept_precision=0.5), scale_Y=False, h2_draw="collapsed")
