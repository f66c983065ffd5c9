"""The interface users meet first: formulas on DataFrames, and every mistake refused with a
message that names the problem, before any JAX code runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import slamjax as sj


def _table(n=12, seed=0):
    rng = np.random.default_rng(seed)
    ids = [f"L{i:02d}" for i in range(n)]
    data = pd.DataFrame(
        {"Population": np.repeat(["a", "b", "c"], n // 3), "Line": ids, "weight": rng.normal(size=n)},
        index=pd.Index(ids, name="id"),
    )
    Y = pd.DataFrame(rng.normal(size=(n, 4)), index=data.index, columns=["y1", "y2", "y3", "y4"])
    M = rng.normal(size=(n + 3, 40))
    levels = ids + ["P1", "P2", "P3"]  # three lines known only through K (parents)
    K = pd.DataFrame(M @ M.T / 40 + 0.05 * np.eye(n + 3), index=levels, columns=levels)
    return Y, data, K


def _model(**changes):
    Y, data, K = _table()
    arguments = dict(Y=Y, data=data, formula="~ Population + weight + (1|Line)", relmat={"Line": K}, n_factors=2)
    arguments.update(changes)
    return sj.Model(**arguments)


def test_formula_model_matches_matrices():
    Y, data, K = _table()
    model = _model()
    X = np.column_stack([np.ones(12), data.Population == "b", data.Population == "c", data.weight]).astype(float)
    assert model.fixed_names[0] == "(Intercept)"
    np.testing.assert_allclose(model.inputs.X, X)
    assert model.level_names == list(K.index)
    np.testing.assert_allclose(model.inputs.Z, np.eye(15)[:12])
    np.testing.assert_allclose(model.inputs.K, K.values)


def test_levels_only_in_K_get_finite_predictions():
    model = _model()
    run = sj.sample(model, num_warmup=30, num_samples=20, progress=False)
    U = run.posterior_mean("U")
    assert list(U.index) == model.level_names
    assert np.all(np.isfinite(U.loc[["P1", "P2", "P3"]].values))
    assert np.any(U.loc[["P1", "P2", "P3"]].values != 0)


def test_wide_feeds_the_model():
    Y, data, K = _table()
    tall = Y.reset_index().melt(id_vars="id", var_name="trait", value_name="value").sample(frac=1.0, random_state=0)
    tall = tall.drop(index=tall.index[:5])  # five cells go missing
    wide = sj.wide(tall, id="id", trait="trait", value="value")
    assert wide.isna().sum().sum() == 5
    model = _model(Y=wide)
    assert sorted(model.trait_names) == ["y1", "y2", "y3", "y4"]
    assert model.individual_names == list(data.index)


def _set(frame, row, column, value):
    frame = frame.copy()
    frame.iloc[row, column] = value
    return frame


Y0, DATA0, K0 = _table()

BAD_INPUTS = {
    "unknown column": (dict(formula="~ Populaton + (1|Line)"), r"Populaton"),
    "Y and data indexes differ": (dict(Y=Y0.rename(index={"L03": "X03"})), r"Y.*index"),
    "all-missing trait": (dict(Y=Y0.assign(y2=np.nan)), r"y2.*(missing|NaN)"),
    "constant trait": (dict(Y=Y0.assign(y3=1.0)), r"y3.*constant"),
    "Inf in Y": (dict(Y=_set(Y0, 2, 1, np.inf)), r"Y.*infinite"),
    "strings in a numeric column": (dict(Y=Y0.astype(object).assign(y1=["x"] * 12)), r"y1.*numeric"),
    "duplicated individual ids": (
        dict(Y=Y0.set_axis(list(Y0.index[:-1]) + ["L00"]), data=DATA0.set_axis(list(DATA0.index[:-1]) + ["L00"])),
        r"[Dd]uplicated",
    ),
    "K not square": (dict(relmat={"Line": K0.iloc[:, :-1]}), r"K|relmat.*(square|index and columns)"),
    "K not symmetric": (dict(relmat={"Line": _set(K0, 0, 1, 5.0)}), r"symmetric"),
    "K not positive semi-definite": (
        dict(relmat={"Line": K0 - 3 * np.eye(15) * np.linalg.eigvalsh(K0.values).max()}),
        r"positive semi-definite",
    ),
    "K with NaN": (dict(relmat={"Line": _set(K0, 4, 4, np.nan)}), r"(NaN|finite)"),
    "K levels not covering the data": (dict(relmat={"Line": K0.drop(index="L05", columns="L05")}), r"L05"),
    "collinear fixed effects": (dict(data=DATA0.assign(w2=2 * DATA0.weight), formula="~ weight + w2 + (1|Line)"), r"weight.*w2|w2.*weight"),
    "more factors than traits": (dict(n_factors=5), r"more factors than traits"),
    "h2_divisions < 2": (dict(h2_divisions=1), r"h2_divisions"),
    "random term on a numeric variable": (dict(formula="~ 1 + (1|weight)", relmat=None), r"weight.*numeric"),
    "empty data frame": (dict(Y=Y0.iloc[:0], data=DATA0.iloc[:0]), r"empty|no rows"),
    "mismatched relmat keys": (dict(relmat={"line": K0}), r"relmat.*line"),
    "no random effect": (dict(formula="~ Population", relmat=None), r"no random effect"),
    "factors without the traits' random effects": (dict(factor_formula="~ weight"), r"factor_formula"),
    "eigen backend with two random effects": (
        dict(formula="~ 1 + (1|Line) + (1|Population)", backend="eigen"), r"backend.*one random effect"),
    "random slope": (dict(formula="~ 1 + (weight|Line)"), r"not supported"),
    "formula without ~": (dict(formula="Population + (1|Line)"), r"~"),
    "NaN in a covariate": (dict(data=_set(DATA0, 3, 2, np.nan)), r"weight"),
    "duplicated K levels": (dict(relmat={"Line": K0.set_axis(list(K0.index[:-1]) + ["L00"], axis=0).set_axis(list(K0.index[:-1]) + ["L00"], axis=1)}), r"[Dd]uplicated"),
    "formula and matrices together": (dict(X=np.ones((12, 1))), r"either as a formula"),
    "no intercept": (dict(formula="~ 0 + weight + (1|Line)"), r"intercept"),
    "bad priors": (dict(priors={"B": 1}), r"priors"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input(case):
    changes, match = BAD_INPUTS[case]
    with pytest.raises(sj.SlamjaxInputError, match=match):
        _model(**changes)


def test_mice_design_and_fit():
    """~ GENDER + season + (1|mouse) on the mice data: X and Z equal hand-built ones; a short fit
    with 20 traits and their missing cells runs and keeps the names."""
    ds = sj.datasets.load_mice(markers=False)
    data = ds.data
    model = sj.Model(
        Y=ds.Y, data=data, formula="~ GENDER + season + (1|mouse)", relmat=ds.relmat, n_factors=5, h2_divisions=10
    )
    seasons = list(data.season.cat.categories)  # treatment contrasts follow the category order
    expected = np.column_stack(
        [np.ones(len(data)), data.GENDER.astype(str) == "M"] + [data.season.astype(str) == s for s in seasons[1:]]
    ).astype(float)
    np.testing.assert_allclose(model.inputs.X, expected)
    assert model.fixed_names[1] == "GENDER[T.M]"
    np.testing.assert_allclose(model.inputs.Z, np.eye(len(data)))
    assert model.level_names == list(ds.relmat["mouse"].index)
    assert not model.data.latent_is_data
    run = sj.sample(model, num_warmup=20, num_samples=10, progress=False)
    h2 = run.posterior_mean("h2")
    assert list(h2.index) == list(ds.Y.columns)
    assert np.all((h2 > 0) & (h2 < 1))
    assert run.posterior["B"].coords["fixed"].values[0] == "(Intercept)"


def test_wheat_design():
    """~ 1 + (1|line) on the wheat data: intercept only, Z the identity in A's order."""
    ds = sj.datasets.load_wheat()
    A = ds.relmat["line"].iloc[::-1, ::-1]  # K order defines the level order
    model = sj.Model(Y=ds.Y, data=ds.data, formula="~ 1 + (1|line)", relmat={"line": A}, n_factors=2)
    np.testing.assert_allclose(model.inputs.X, np.ones((599, 1)))
    np.testing.assert_allclose(model.inputs.Z, np.eye(599)[:, ::-1])
    assert model.level_names == list(A.index)
