"""The woodbury backend (one random effect diagonalised, the others a low-rank update): it
computes the same statistics as the cholesky backend, its effect draws have the closed-form
conditional, and the automatic choice between the two."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

import slamjax as sj
from slamjax.random_effects.woodbury import grid_pairs

from _models import three_effect_model
from _stats import Z_BOUND, z_mean, z_variance_normal


@pytest.fixture(scope="module")
def backends():
    return three_effect_model(backend="woodbury"), three_effect_model(backend="cholesky")


def test_grid_points_share_pairs():
    grid = sj.h2_grid(3, 10)
    pairs, pair_of_grid = grid_pairs(grid, 0)
    assert grid.shape[0] == 220 and pairs.shape[0] == 55
    np.testing.assert_allclose(pairs[pair_of_grid, 0], grid[:, 0])
    np.testing.assert_allclose(pairs[pair_of_grid, 1], 1.0 - grid.sum(axis=1))


@pytest.mark.parametrize("variant", ["animal first", "animal last, with ancestors"])
def test_same_statistics_as_cholesky(backends, variant):
    """Every quantity the sweep takes from a backend, to 1e-8, in each backend's own coordinates;
    also with the diagonalised effect last in the formula and more levels than rows (a pedigree
    with ancestors that have no records)."""
    if variant == "animal first":
        woodbury, chol = backends
        assert woodbury.random_effect.sizes == chol.random_effect.sizes == (30, 6, 3)
    else:
        woodbury, chol = (three_effect_model(backend=b, ancestors=5, animal_last=True) for b in ("woodbury", "cholesky"))
        assert woodbury.random_effect.sizes == (6, 3, 35) and woodbury.random_effect.first == 2
    Q = np.asarray(woodbury.random_effect.Q)
    rng = np.random.default_rng(3)
    n, G = 30, woodbury.grid.shape[0]
    y, W = rng.normal(size=(n, 5)), rng.normal(size=(n, 3))
    y_rot, W_rot = jnp.asarray(Q.T @ y), jnp.asarray(Q.T @ W)
    index = jnp.asarray(rng.integers(0, G, 5))
    tau = jnp.asarray(rng.uniform(0.5, 2.0, 5))
    wre, cre = woodbury.data.re, chol.data.re
    np.testing.assert_allclose(wre.log_det_V, cre.log_det_V, rtol=1e-10)
    pairs = [
        (wre.regression_statistics(y_rot, W_rot, index), cre.regression_statistics(jnp.asarray(y), jnp.asarray(W), index)),
        (wre.regression_statistics_grid(y_rot, W_rot), cre.regression_statistics_grid(jnp.asarray(y), jnp.asarray(W))),
        ((wre.quadratic_forms(y_rot, index),), (cre.quadratic_forms(jnp.asarray(y), index),)),
        ((wre.h2_log_likelihood(y_rot, tau),), (cre.h2_log_likelihood(jnp.asarray(y), tau),)),
    ]
    for got_all, expected_all in pairs:
        for got, expected in zip(got_all, expected_all):
            np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-9)
    # effects: the same levels give the same contribution to the rows
    a = jnp.asarray(rng.normal(size=(wre.r, 2)))
    levels = np.asarray(wre.to_levels(a))
    Zs = woodbury.Zs
    offsets = np.cumsum([0, *wre.sizes])
    on_rows = sum(Z @ levels[offsets[m] : offsets[m + 1]] for m, Z in enumerate(Zs))
    np.testing.assert_allclose(Q @ np.asarray(wre.effect_on_rows(a)), on_rows, atol=1e-10)


@pytest.mark.parametrize("variant", ["animal first", "animal last, with ancestors"])
def test_effect_draws_match_the_closed_form(backends, variant):
    """[U_1; U_2; U_3] | e ~ N(P^-1 tau Z'e / h_e, P^-1), P = tau (Z'Z / h_e + diag(K_m^-1 / h_m)),
    at a grid point with every effect present and one with the second effect at 0 (drawn exactly 0)."""
    if variant == "animal first":
        model = backends[0]
    else:
        model = three_effect_model(backend="woodbury", ancestors=5, animal_last=True)
    re = model.data.re
    grid = model.grid
    rows = [int(np.flatnonzero(np.isclose(grid, [0.25, 0.25, 0.25]).all(1))[0]),
            int(np.flatnonzero(np.isclose(grid, [0.5, 0.0, 0.25]).all(1))[0])]
    tau = np.array([1.3, 0.8])
    rng = np.random.default_rng(2)
    n = model.shapes["n"]
    resid = rng.normal(size=(n, 2))
    Q = np.asarray(re.Q)
    draw = jax.jit(jax.vmap(lambda key: re.to_levels(
        re.sample_effects(key, jnp.asarray(Q.T @ resid), jnp.asarray(rows), jnp.asarray(tau)))))
    U = np.asarray(draw(jax.random.split(jax.random.key(3), 4000)))
    offsets = np.cumsum([0, *re.sizes])
    for j, g in enumerate(rows):
        h = grid[g]
        present = [m for m in range(3) if h[m] > 0]
        for m in range(3):
            if h[m] == 0:
                assert np.all(U[:, offsets[m] : offsets[m + 1], j] == 0)
        Z = np.hstack([model.Zs[m] for m in present])
        Kinv = scipy.linalg.block_diag(*[np.linalg.inv(model.Ks[m]) / h[m] for m in present])
        h_e = 1.0 - h.sum()
        precision = tau[j] * (Z.T @ Z / h_e + Kinv)
        cov = np.linalg.inv(precision)
        mean = cov @ (tau[j] * Z.T @ resid[:, j] / h_e)
        columns = np.concatenate([np.arange(offsets[m], offsets[m + 1]) for m in present])
        draws = U[:, columns, j]
        assert np.all(np.abs(z_mean(draws, mean, np.sqrt(np.diag(cov)))) < Z_BOUND)
        assert np.all(np.abs(z_variance_normal(draws, np.diag(cov))) < Z_BOUND)


def test_h2_probabilities_match_enumeration(backends):
    woodbury = backends[0]
    re = woodbury.data.re
    rng = np.random.default_rng(4)
    n = woodbury.shapes["n"]
    resid, tau = rng.normal(size=(n, 2)), np.array([0.6, 1.7])
    got = np.asarray(re.h2_log_likelihood(jnp.asarray(np.asarray(re.Q).T @ resid), jnp.asarray(tau)))
    got = got - scipy.special.logsumexp(got, axis=1, keepdims=True)
    ZKZ = [Z @ K @ Z.T for Z, K in zip(woodbury.Zs, woodbury.Ks)]
    for j in range(2):
        expected = []
        for h in woodbury.grid:
            V = (sum(hm * M for hm, M in zip(h, ZKZ)) + (1 - h.sum()) * np.eye(n)) / tau[j]
            expected.append(-0.5 * np.linalg.slogdet(V)[1] - 0.5 * resid[:, j] @ np.linalg.solve(V, resid[:, j]))
        np.testing.assert_allclose(got[j], np.array(expected) - scipy.special.logsumexp(expected), atol=1e-9)


def test_automatic_choice_and_refusals(monkeypatch):
    from slamjax.random_effects import _plan
    from slamjax.random_effects._plan import _cheaper_backend, _check_memory

    grid = sj.h2_grid(3, 10)
    assert _cheaper_backend(1814, (1814, 523, 8), grid) == "woodbury"  # mice: animal + cage + parity
    assert _cheaper_backend(1000, (1000, 900, 800), grid) == "cholesky"
    assert _cheaper_backend(1000, (1000, 600, 100), grid) == "cholesky"
    with monkeypatch.context() as patch:  # cholesky's 1.7 GiB would not fit, woodbury's 0.9 GiB is smaller
        patch.setattr(_plan, "_available_memory", lambda: 2 * 2**30)
        assert _cheaper_backend(1000, (1000, 600, 100), grid) == "woodbury"
        assert _cheaper_backend(1000, (1000, 900, 800), grid) == "cholesky"  # woodbury's would be 4.8 GiB
    assert three_effect_model(backend="auto").backend == "woodbury"
    with pytest.raises(sj.SlamjaxInputError, match="'woodbury' needs two or more random effects"):
        sj.Model(Y=np.random.default_rng(0).normal(size=(10, 2)), n_factors=1, backend="woodbury")
    with pytest.raises(sj.SlamjaxInputError, match="'groups' is not available with the woodbury backend"):
        sj.Model(**_formula_inputs(), backend="woodbury", missing="groups")
    with pytest.raises(sj.SlamjaxInputError, match=r"memory: the woodbury backend.*GiB"):
        _check_memory("woodbury", 100_000, (100_000, 20_000), 220, 100, n_pairs=55)


def _formula_inputs():
    model = three_effect_model(n=12, backend="cholesky")
    import pandas as pd

    return dict(
        Y=pd.DataFrame(np.asarray(model.inputs.Y), index=model.individual_names, columns=model.trait_names),
        data=pd.DataFrame({"id": model.individual_names, "cage": [f"c{i % 3}" for i in range(12)]},
                          index=model.individual_names),
        formula="~ 1 + (1|id) + (1|cage)", n_factors=1, h2_divisions=4,
    )
