"""sj.cross_validate: one fold reproduced by hand, no recompilation between folds, bad folds refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _models import tiny_model

import slamjax as sj
from slamjax.sampler import run_draws

N, P = 30, 4
SETTINGS = dict(num_warmup=20, num_samples=10, thin=2, seed=5)


@pytest.fixture(scope="module")
def model():
    return tiny_model(n=N, p=P, k=2, fraction_missing=0.1)


def _folds(model, n_folds=3):
    return pd.Series(np.arange(N) % n_folds, index=model.individual_names, name="fold")


def test_one_fold_by_hand_and_no_recompilation(model):
    folds = _folds(model)
    folds.iloc[-1] = np.nan  # never held out
    before = run_draws._cache_size()  # warm-up and draws: one compiled loop
    cv = sj.cross_validate(model, folds, missing="impute", **SETTINGS)
    # three folds of the same shapes: at most one compile of each loop
    assert run_draws._cache_size() - before <= 1
    assert list(cv.correlations.index) == [0.0, 1.0, 2.0] and list(cv.correlations.columns) == model.trait_names
    assert cv.predictions.shape == (N, P) and list(cv.predictions.index) == model.individual_names

    Y = model.inputs.Y
    observed = ~np.isnan(Y)
    assert np.array_equal(cv.predictions.notna().values, observed & folds.notna().values[:, None])
    assert cv.predictions.iloc[-1].isna().all()
    np.testing.assert_array_equal(cv.observed.values[observed], np.where(cv.predictions.notna(), Y, np.nan)[observed])

    mask = (folds == 1).values[:, None] & observed  # fold 1, by hand
    run = sj.sample(model.masked(mask, missing="impute"), progress=False, **SETTINGS)
    fitted = run.predict("fitted").values
    np.testing.assert_array_equal(cv.predictions.values[mask], fitted[mask])
    for j, trait in enumerate(model.trait_names):
        rows = mask[:, j]
        assert cv.correlations.loc[1.0, trait] == np.corrcoef(fitted[rows, j], Y[rows, j])[0, 1]

    held = cv.predictions.notna().values
    for j, trait in enumerate(model.trait_names):
        expected = np.corrcoef(cv.predictions.values[held[:, j], j], Y[held[:, j], j])[0, 1]
        assert cv.pooled[trait] == pytest.approx(expected, rel=1e-12)
    assert cv.elapsed > 0 and cv.seconds_per_iteration > 0 and len(cv.fold_seconds) == 3
    assert "CrossValidation(3 folds" in repr(cv)


def test_only_the_chosen_traits_are_held_out(model):
    folds = _folds(model)
    before = run_draws._cache_size()  # warm-up and draws: one compiled loop
    cv = sj.cross_validate(model, folds, "trait2", missing="impute", **SETTINGS)
    assert run_draws._cache_size() - before <= 1  # three folds, one compile at most (none after the test above)
    assert list(cv.predictions.columns) == ["trait2"] and list(cv.correlations.columns) == ["trait2"]
    observed = ~np.isnan(model.inputs.Y[:, 2])
    assert np.array_equal(cv.predictions["trait2"].notna().values, observed)
    assert np.all(np.isfinite(cv.correlations.values)) and np.isfinite(cv.pooled["trait2"])


@pytest.mark.parametrize(
    "case, message",
    [
        ("unknown individuals", "not in the model"),
        ("everyone in one fold", "fewer than 2 observations"),
        ("unknown trait", "not traits of the model"),
        ("two columns", "one column"),
        ("not a series", "pandas Series"),
        ("duplicated", "duplicated individuals"),
        ("no labels", "no individual has a fold label"),
        ("bad count", "num_samples"),
        ("unknown setting", "neither cross-validation settings"),
        ("bad dtype", "dtype: must be 'float64'"),
    ],
)
def test_bad_folds(model, case, message):
    folds = _folds(model)
    kwargs = dict(num_warmup=1, num_samples=1)
    traits = None
    if case == "unknown individuals":
        folds = pd.concat([folds, pd.Series([1], index=["stranger"])])
    elif case == "everyone in one fold":
        folds[:] = 0
    elif case == "unknown trait":
        traits = ["trait0", "height"]
    elif case == "two columns":
        folds = pd.DataFrame({"a": folds, "b": folds})
    elif case == "not a series":
        folds = folds.to_dict()
    elif case == "duplicated":
        folds = pd.concat([folds, folds.iloc[:1]])
    elif case == "no labels":
        folds[:] = np.nan
    elif case == "bad count":
        kwargs["num_samples"] = 0
    elif case == "unknown setting":
        kwargs["num_factors"] = 2
    elif case == "bad dtype":
        kwargs["dtype"] = "float16"
    with pytest.raises(sj.SlamjaxInputError, match=message):
        sj.cross_validate(model, folds, traits, **kwargs)


def test_one_column_dataframe_and_a_single_trait_held_out(model):
    """Everyone in one fold is fine when only one trait is held out... unless it empties that trait."""
    everyone = pd.DataFrame({"fold": np.zeros(N)}, index=model.individual_names)
    with pytest.raises(sj.SlamjaxInputError, match=r"\['trait1'\]"):
        sj.cross_validate(model, everyone, ["trait1"], num_warmup=1, num_samples=1)


def test_folds_share_the_decomposition_of_K(model):
    """Masking cells on the imputation path keeps Z and K, so a fold reuses the model's eigen backend."""
    mask = np.zeros((N, P), dtype=bool)
    mask[:5, 0] = True
    fold = model.masked(mask)
    assert model.missing_groups is None and fold.missing_groups is None
    assert fold.random_effect is model.random_effect
    assert np.isnan(np.asarray(fold.inputs.Y)[:5, 0]).all()


def test_float32_folds_are_float32_samples(model):
    """dtype reaches every fold's sj.sample: a float32 fold equals the float32 fit of that fold by hand."""
    folds = pd.Series(np.arange(N) % 2, index=model.individual_names, name="fold")
    cv = sj.cross_validate(model, folds, missing="impute", dtype="float32", **SETTINGS)
    mask = (folds == 0).values[:, None] & ~np.isnan(model.inputs.Y)
    run = sj.sample(model.masked(mask, missing="impute"), progress=False, dtype="float32", **SETTINGS)
    assert run.settings["dtype"] == "float32"
    np.testing.assert_array_equal(cv.predictions.values[mask], run.predict("fitted").values[mask])
