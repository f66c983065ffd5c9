"""sj.Model: bad input is refused with a message naming the argument, before any JAX code runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import slamjax as sj


@pytest.fixture
def inputs():
    rng = np.random.default_rng(0)
    n, p = 12, 4
    M = rng.normal(size=(n, 3 * n))
    return dict(Y=rng.normal(size=(n, p)), X=np.column_stack([np.ones(n), rng.normal(size=n)]),
                Z=np.eye(n), K=M @ M.T / (3 * n))


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda d: d.update(X=d["X"][:-1]), r"X.*\(11, 2\).*\(12, 4\)|X.*rows"),
        (lambda d: d["X"].__setitem__((3, 1), np.nan), r"X.*(NaN|finite)"),
        (lambda d: d["X"].__setitem__((3, 1), np.inf), r"X.*(Inf|finite)"),
        (lambda d: d["K"].__setitem__((0, 0), np.nan), r"K.*(NaN|finite)"),
        (lambda d: d["K"].__setitem__((0, 1), d["K"][0, 1] + 1.0), r"K.*symmetric"),
        (lambda d: d.update(K=d["K"] - 2.0 * np.eye(12) * np.linalg.eigvalsh(d["K"]).max()), r"K.*positive semi-definite"),
        (lambda d: d.update(Z=np.eye(12)[:, :10]), r"(Z|K).*(10|12)"),
        (lambda d: d.update(n_factors=0), r"n_factors"),
        (lambda d: d.update(n_factors=9), r"n_factors.*more factors than traits"),
        (lambda d: d.update(h2_divisions=1), r"h2_divisions"),
        (lambda d: d["Y"].__setitem__((0, 0), np.inf), r"Y.*(Inf|finite)"),
        (lambda d: d.update(priors="flat"), r"priors"),
        (lambda d: d.update(rotate_factors="yes"), r"rotate_factors: must be True or False"),
        (lambda d: d.update(shear_factors=1), r"shear_factors: must be True or False"),
        (lambda d: d.update(factor_h2_draw="joint"), r"factor_h2_draw: must be"),
        (lambda d: d.update(exchange_factors="yes"), r"exchange_factors: must be 'auto', True or False"),
        (lambda d: d.update(rescale_factors="yes"), r"rescale_factors: must be 'auto', True or False"),
        (lambda d: d.update(rescale_factors=True, backend="cholesky"), r"rescale_factors=True needs one random "),
        (lambda d: d.update(rescale_factors=True, priors=sj.Priors(Lambda=sj.priors.ARD())),
         r"an ordered loadings prior"),
        (lambda d: d.update(exchange_factors=True, backend="cholesky"), r"exchange_factors=True needs one random "
                                                                          r"effect \(the eigen backend\)"),
    ],
)
def test_bad_input_is_refused(inputs, change, match):
    inputs = dict(inputs, n_factors=2)
    change(inputs)
    with pytest.raises(sj.SlamjaxInputError, match=match):
        sj.Model(**inputs)


def test_names_are_kept(inputs):
    ids = [f"line{i}" for i in range(12)]
    Y = pd.DataFrame(inputs["Y"], index=ids, columns=["a", "b", "c", "d"])
    K = pd.DataFrame(inputs["K"], index=ids, columns=ids).iloc[::-1, ::-1]
    model = sj.Model(Y=Y, K=K, n_factors=2)
    assert model.trait_names == ["a", "b", "c", "d"]
    assert model.level_names == ids
    np.testing.assert_allclose(model.inputs.K, inputs["K"])
    assert "p=4 traits" in repr(model)


def test_standardisation_is_undone(inputs):
    Y = inputs["Y"] * np.array([1.0, 10.0, 0.1, 3.0]) + 5.0
    model = sj.Model(Y=Y, K=inputs["K"], n_factors=2)
    np.testing.assert_allclose(model.Y_mean, Y.mean(axis=0))
    np.testing.assert_allclose(model.Y_scale, Y.std(axis=0, ddof=1))
    run = sj.sample(model, num_warmup=10, num_samples=10, progress=False)
    P = run.posterior_mean("P").values
    # P is on the original scale: its diagonal is of the order of each trait's variance
    assert np.all(np.diag(P) / Y.var(axis=0) > 0.2) and np.all(np.diag(P) / Y.var(axis=0) < 5)
