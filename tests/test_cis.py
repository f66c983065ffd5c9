"""``sj.obs.CisGenotypes``: each gene's local markers in the link, trans effects in the factors.

The joint draw of (cis effects, Eta) against its dense closed form, Geweke's test of the whole sweep
with the link (and a planted bug that fails it), recovery of simulated cis effects beside factors,
the store and bad input.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import slamjax as sj
from slamjax._errors import SlamjaxInputError
from slamjax.observation import cis as cis_module

from _geweke import run_geweke, worst
from _models import random_design
from _stats import Z_BOUND, z_mean, z_variance_normal


def _cis_parts(n=30, p=4, seed=0):
    rng = np.random.default_rng(seed)
    ids = [f"i{i}" for i in range(n)]
    genotypes = pd.DataFrame(rng.binomial(2, 0.4, size=(n, 6)).astype(float), index=ids,
                             columns=[f"m{j}" for j in range(6)])
    genotypes["m1"] = np.clip(genotypes["m0"] + rng.integers(-1, 2, n), 0, 2)  # linked to m0
    y = pd.DataFrame(rng.normal(size=(n, p)), index=ids, columns=[f"g{j}" for j in range(p)])
    local = {"g0": ["m0", "m1", "m2"], "g1": ["m2"], "g2": ["m3", "m4"]}  # g3: no cis marker
    return y, genotypes, local


def test_joint_cis_draw_follows_its_closed_form():
    y, genotypes, local = _cis_parts(n=20)
    model = sj.obs.CisGenotypes(y, genotypes, local)
    rng = np.random.default_rng(1)
    mean = jnp.asarray(rng.normal(size=y.shape))
    resid = jnp.asarray([0.5, 1.2, 0.8, 2.0])
    phi = 0.3
    parameters = {"gamma": jnp.zeros(model.valid.shape), "phi": jnp.asarray(phi)}
    draw = jax.jit(jax.vmap(lambda key: model.sample_latent_and_parameters(key, parameters, mean, resid)))
    Eta, theta = draw(jax.random.split(jax.random.key(2), 20_000))
    gamma = np.asarray(theta["gamma"])
    L, valid, v = np.asarray(model.L), np.asarray(model.valid), np.asarray(model.v)
    # Eta = y - L gamma exactly, draw by draw
    np.testing.assert_allclose(np.asarray(Eta), y.to_numpy()[None] - np.einsum("gnw,dgw->dng", L, gamma), atol=1e-10)
    zs = []
    for g in range(y.shape[1]):
        w = valid[g]
        if not w.any():
            assert np.all(gamma[:, g] == 0)
            continue
        Lg = L[g][:, w]
        A = Lg.T @ Lg / float(resid[g]) + np.eye(w.sum()) / (phi * v[g])
        cov = np.linalg.inv(A)
        centre = cov @ Lg.T @ (y.to_numpy()[:, g] - np.asarray(mean)[:, g]) / float(resid[g])
        zs += [z_mean(gamma[:, g, w], centre, np.sqrt(np.diag(cov))), z_variance_normal(gamma[:, g, w], np.diag(cov))]
    assert np.all(np.abs(np.concatenate(zs)) < Z_BOUND)


def cis_model(n=30, k=3, seed=0):
    """A tiny model observed through CisGenotypes (as tests/_links.link_model)."""
    rng = np.random.default_rng(seed + 100)
    Z, K = random_design(n, n, seed)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    X_F = rng.normal(size=(n, 1))
    y, genotypes, local = _cis_parts(n, seed=seed)
    return sj.Model(observation=sj.obs.CisGenotypes(y, genotypes, local, prior_scale=0.5), X=X, X_F=X_F, Z=Z, K=K,
                    n_factors=k, h2_divisions=5, priors=sj.Priors(intercept_precision=0.5), scale_Y=False)


def cis_geweke_z(n_steps=1000, seed=0):
    return run_geweke(cis_model(), n_prior=100_000, n_chains=64, n_steps=n_steps, seed=seed)


@pytest.mark.slow
def test_geweke_with_cis_genotypes():
    z, names = cis_geweke_z()
    assert np.all(np.abs(z) < Z_BOUND), worst(z, names)


def test_closed_form_check_fails_on_a_planted_bug(monkeypatch):
    """The cis effects drawn as if the residual variance were 1 (a units slip): the closed-form
    check above fails."""
    original = cis_module.CisGenotypes.sample_latent_and_parameters

    def planted(self, key, parameters, mean, resid_variance):
        return original(self, key, parameters, mean, jnp.ones_like(resid_variance))

    monkeypatch.setattr(cis_module.CisGenotypes, "sample_latent_and_parameters", planted)
    with pytest.raises(AssertionError):
        test_joint_cis_draw_follows_its_closed_form()


@pytest.mark.slow
def test_cis_effects_are_recovered_beside_the_factors():
    rng = np.random.default_rng(3)
    n, p, k, width = 300, 30, 3, 4
    ids = [f"i{i}" for i in range(n)]
    genotypes = pd.DataFrame(rng.binomial(2, 0.3, size=(n, p * width)).astype(float), index=ids,
                             columns=[f"m{j}" for j in range(p * width)])
    local = {f"g{g}": [f"m{g * width + w}" for w in range(width)] for g in range(p)}
    gamma = rng.normal(size=(p, width)) * (rng.random((p, width)) < 0.5) * 0.8
    centred = genotypes.to_numpy() - genotypes.to_numpy().mean(axis=0)
    cis = np.stack([centred[:, g * width:(g + 1) * width] @ gamma[g] for g in range(p)], axis=1)
    trans = rng.normal(size=(n, k)) @ rng.normal(size=(k, p))
    y = pd.DataFrame(cis + trans + rng.normal(size=(n, p)) * 0.5, index=ids, columns=list(local))
    model = sj.Model(observation=sj.obs.CisGenotypes(y, genotypes, local), n_factors=5)
    run = sj.sample(model, num_warmup=300, num_samples=300, num_chains=1, seed=0, progress=False)
    table = run.cis_effects()
    truth = np.array([gamma[int(row.gene[1:]), int(row.marker[1:]) % width] for row in table.itertuples()])
    assert np.corrcoef(table["mean"], truth)[0, 1] >= 0.95
    covered = np.mean((table["lower"] <= truth) & (truth <= table["upper"]))
    assert 0.8 <= covered <= 0.99


def test_cis_model_rebuilds_from_its_arguments_and_refuses_bad_input():
    y, genotypes, local = _cis_parts()
    model = sj.obs.CisGenotypes(y, genotypes, local)
    again = sj.obs.CisGenotypes(**model.constructor_arguments())
    np.testing.assert_allclose(np.asarray(again.L), np.asarray(model.L))
    assert again.local_markers == model.local_markers
    with pytest.raises(SlamjaxInputError, match="not columns of genotypes"):
        sj.obs.CisGenotypes(y, genotypes, {"g0": ["m9"]})
    with pytest.raises(SlamjaxInputError, match="not columns of y"):
        sj.obs.CisGenotypes(y, genotypes, {"gene_x": ["m0"]})
    with pytest.raises(SlamjaxInputError, match="complete"):
        sj.obs.CisGenotypes(y.mask(y > 1.5), genotypes, local)
    with pytest.raises(SlamjaxInputError, match="no genotypes"):
        sj.obs.CisGenotypes(y, genotypes.iloc[1:], local)
    windows = sj.obs.cis_windows(pd.DataFrame({"chromosome": [1, 2], "position": [10.0, 5.0]}, index=["g0", "g1"]),
                                 pd.DataFrame({"chromosome": [1, 1, 2], "position": [9.0, 30.0, 6.0]},
                                              index=["m0", "m1", "m2"]), window=2.0)
    assert windows == {"g0": ["m0"], "g1": ["m2"]}
