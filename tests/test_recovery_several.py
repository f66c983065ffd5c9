"""Recovery with two random effects: one with a relationship matrix (r = n), one iid grouping
with r != n (cages): posterior-mean G_1, G_2 and R correlate with the truth at >= 0.9 each."""

from __future__ import annotations

import numpy as np
import pytest

import slamjax as sj


@pytest.mark.slow
def test_recovers_two_random_effects():
    ds = sj.datasets.simulate(n=300, p=15, k=3, seed=1, n_groups=30)
    model = sj.Model(
        Y=ds.Y, data=ds.data, formula="~ 1 + (1|id) + (1|group)", relmat={"id": ds.relmat["id"]},
        n_factors=5, h2_divisions=10,
    )
    assert model.backend == "woodbury" and model.random_effect.sizes == (300, 30)  # the automatic choice
    run = sj.sample(model, num_warmup=1000, num_samples=500, thin=2, num_chains=1, seed=0, progress=False)
    G = run.posterior_mean("G")
    upper = np.triu_indices(15)
    correlations = {
        name: np.corrcoef(estimate[upper], truth[upper])[0, 1]
        for name, estimate, truth in [
            ("G_id", G["id"].values, ds.truth["G"]),
            ("G_group", G["group"].values, ds.truth["G_group"]),
            ("R", run.posterior_mean("R").values, ds.truth["R"]),
        ]
    }
    print(correlations)
    assert all(value >= 0.9 for value in correlations.values()), correlations
