"""Tests for slamjax._validate (input checks run before any JAX code)."""


import numpy as np
import pandas as pd
import pytest

from slamjax._errors import SlamjaxInputError
from slamjax._validate import ValidatedData, validate_inputs

KW = dict(n_factors=2, h2_divisions=5)


def make_Y(n=6, p=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, p))


def make_Y_df(n=6, p=3, seed=0):
    return pd.DataFrame(
        make_Y(n, p, seed),
        index=[f"id{i}" for i in range(n)],
        columns=[f"t{j}" for j in range(p)],
    )


def spd(r, seed=1):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(r, r))
    return a @ a.T + r * np.eye(r)


# ----------------------------------------------------------------------------- positive cases


def test_module_does_not_import_jax():
    # the validation module must work before any JAX code: it must not import jax itself
    import slamjax._validate as v

    src = open(v.__file__).read()
    assert "import jax" not in src and "from jax" not in src


def test_array_inputs_defaults():
    Y = make_Y()
    d = validate_inputs(Y, **KW)
    assert isinstance(d, ValidatedData)
    assert d.Y.dtype == np.float64 and d.Y.shape == (6, 3)
    np.testing.assert_array_equal(d.Y, Y)
    assert d.individual_names == [f"ind{i}" for i in range(6)]
    assert d.trait_names == ["trait0", "trait1", "trait2"]
    np.testing.assert_array_equal(d.X, np.ones((6, 1)))
    assert d.fixed_names == ["(Intercept)"]
    assert d.X_F.shape == (6, 0) and d.factor_fixed_names == []
    np.testing.assert_array_equal(d.Z, np.eye(6))
    np.testing.assert_array_equal(d.K, np.eye(6))
    assert d.level_names == d.individual_names
    assert (d.n, d.p, d.b, d.b_F, d.r) == (6, 3, 1, 0, 6)


def test_result_is_frozen_and_copies_input():
    Y = make_Y()
    d = validate_inputs(Y, **KW)
    with pytest.raises(Exception):
        d.Y = Y  # frozen dataclass
    Y[0, 0] = 123.0
    assert d.Y[0, 0] != 123.0


def test_missing_values_allowed_in_Y():
    Y = make_Y()
    Y[0, 0] = np.nan
    Y[3, 2] = np.nan
    d = validate_inputs(Y, **KW)
    assert np.isnan(d.Y[0, 0]) and np.isnan(d.Y[3, 2])


def test_int_Y_converted_to_float():
    Y = np.array([[1, 2], [3, 5], [4, 1]])
    d = validate_inputs(Y, n_factors=1, h2_divisions=2)
    assert d.Y.dtype == np.float64


def test_intercept_prepended_to_array_X():
    X = np.arange(6.0).reshape(6, 1)
    d = validate_inputs(make_Y(), X, **KW)
    assert d.X.shape == (6, 2)
    np.testing.assert_array_equal(d.X[:, 0], 1.0)
    np.testing.assert_array_equal(d.X[:, 1], X[:, 0])
    assert d.fixed_names == ["(Intercept)", "x0"]


def test_intercept_moved_to_front_and_renamed():
    Y = make_Y_df()
    X = pd.DataFrame(
        {"age": np.arange(6.0), "const": np.ones(6), "sex": [0, 1, 0, 1, 1, 0]}, index=Y.index
    )
    d = validate_inputs(Y, X, **KW)
    assert d.fixed_names == ["(Intercept)", "age", "sex"]
    np.testing.assert_array_equal(d.X[:, 0], 1.0)
    np.testing.assert_array_equal(d.X[:, 1], np.arange(6.0))
    np.testing.assert_array_equal(d.X[:, 2], [0, 1, 0, 1, 1, 0])


def test_dataframe_inputs_names():
    Y = make_Y_df()
    d = validate_inputs(Y, **KW)
    assert d.individual_names == list(Y.index)
    assert d.trait_names == ["t0", "t1", "t2"]
    assert d.level_names == list(Y.index)


def test_X_and_X_F_reordered_to_Y_index():
    Y = make_Y_df()
    age = pd.Series(np.arange(6.0) ** 1.5, index=Y.index)
    X = pd.DataFrame({"age": age}).iloc[::-1]  # reversed order
    X_F = pd.DataFrame({"dose": np.array([0.1, 0.5, 0.2, 0.9, 0.3, 0.4])}, index=Y.index).iloc[
        [3, 1, 5, 0, 2, 4]
    ]
    d = validate_inputs(Y, X, X_F, **KW)
    np.testing.assert_array_equal(d.X[:, 1], age.to_numpy())
    np.testing.assert_array_equal(d.X_F[:, 0], [0.1, 0.5, 0.2, 0.9, 0.3, 0.4])
    assert d.factor_fixed_names == ["dose"]


def test_Z_reordered_and_K_reordered_to_Z_columns():
    Y = make_Y_df()
    levels = ["a", "b", "c"]
    assign = ["a", "b", "c", "a", "b", "c"]
    Z = pd.DataFrame(
        [[1.0 if lv == a else 0.0 for lv in levels] for a in assign], index=Y.index, columns=levels
    )
    Kmat = spd(3)
    K = pd.DataFrame(Kmat, index=levels, columns=levels)
    perm = ["c", "a", "b"]
    d = validate_inputs(Y, Z=Z.iloc[::-1], K=K.loc[perm, perm], **KW)
    np.testing.assert_array_equal(d.Z, Z.to_numpy())
    np.testing.assert_allclose(d.K, Kmat)
    assert d.level_names == levels


def test_K_columns_reordered_to_its_index():
    Y = make_Y_df(n=3, p=2)
    names = list(Y.index)
    Kmat = spd(3)
    K = pd.DataFrame(Kmat, index=names, columns=names)
    d = validate_inputs(Y, K=K[[names[2], names[0], names[1]]], n_factors=1, h2_divisions=2)
    np.testing.assert_allclose(d.K, Kmat)


def test_K_aligned_to_Y_index_when_Z_is_None():
    Y = make_Y_df()
    names = list(Y.index)
    Kmat = spd(6)
    K = pd.DataFrame(Kmat, index=names, columns=names)
    rev = names[::-1]
    d = validate_inputs(Y, K=K.loc[rev, rev], **KW)
    np.testing.assert_allclose(d.K, Kmat)
    np.testing.assert_array_equal(d.Z, np.eye(6))
    assert d.level_names == names


def test_K_symmetrised_exactly():
    Kmat = spd(6)
    Kmat[0, 1] += 1e-12
    d = validate_inputs(make_Y(), K=Kmat, **KW)
    np.testing.assert_array_equal(d.K, d.K.T)
    np.testing.assert_array_equal(d.K, (Kmat + Kmat.T) / 2)


def test_K_psd_singular_accepted():
    v = np.arange(1.0, 7.0)
    K = np.outer(v, v)  # rank one, PSD
    d = validate_inputs(make_Y(), K=K, **KW)
    assert d.K.shape == (6, 6)


def test_array_Z_and_K():
    Z = np.kron(np.eye(3), np.ones((2, 1)))  # 6 x 3
    d = validate_inputs(make_Y(), Z=Z, K=spd(3), **KW)
    assert d.Z.shape == (6, 3) and d.K.shape == (3, 3)
    assert d.level_names == ["level0", "level1", "level2"]


def test_K_names_used_when_Z_is_array():
    Z = np.kron(np.eye(3), np.ones((2, 1)))
    K = pd.DataFrame(spd(3), index=list("xyz"), columns=list("xyz"))
    d = validate_inputs(make_Y(), Z=Z, K=K, **KW)
    assert d.level_names == ["x", "y", "z"]


def test_object_column_of_numbers_accepted():
    Y = make_Y_df()
    Y["t1"] = Y["t1"].astype(object)
    d = validate_inputs(Y, **KW)
    assert d.Y.dtype == np.float64


def test_nullable_int_with_missing_accepted():
    Y = pd.DataFrame({"a": pd.array([1, 2, None, 4], dtype="Int64"), "b": [1.0, 2.5, 3.0, 0.0]})
    d = validate_inputs(Y, n_factors=1, h2_divisions=2)
    assert np.isnan(d.Y[2, 0])


def test_numpy_integer_params_accepted():
    validate_inputs(make_Y(), n_factors=np.int64(3), h2_divisions=np.int32(2))


# ----------------------------------------------------------------------------- refusals: Y


def _raises(match, *args, **kwargs):
    kw = dict(KW)
    kw.update(kwargs)
    with pytest.raises(SlamjaxInputError, match=match) as info:
        validate_inputs(*args, **kw)
    return str(info.value)


def test_error_is_value_error():
    assert issubclass(SlamjaxInputError, ValueError)


def test_Y_not_2d():
    msg = _raises(r"Y: must be 2-D", np.arange(5.0))
    assert "reshape" in msg


def test_Y_empty():
    _raises(r"Y: is empty", np.zeros((0, 3)))
    _raises(r"Y: is empty", np.zeros((4, 0)))


def test_Y_infinite():
    Y = make_Y()
    Y[2, 1] = np.inf
    _raises(r"Y: contains 1 infinite", Y)
    Y[2, 1] = -np.inf
    _raises(r"Y: contains 1 infinite", Y)


def test_Y_all_missing_trait_named():
    Y = make_Y_df()
    Y["t1"] = np.nan
    _raises(r"Y: trait\(s\) 't1' have every value missing", Y)


def test_Y_constant_trait_named():
    Y = make_Y_df()
    Y["t2"] = 4.0
    Y.iloc[0, 2] = np.nan
    _raises(r"Y: trait\(s\) 't2' are constant", Y)


def test_Y_duplicated_individuals():
    Y = make_Y_df()
    Y.index = ["a", "b", "a", "c", "d", "e"]
    _raises(r"Y: duplicated individual names .*'a'", Y)


def test_Y_duplicated_traits():
    Y = make_Y_df()
    Y.columns = ["t0", "t0", "t2"]
    _raises(r"Y: duplicated trait names .*'t0'", Y)


def test_Y_string_column_named():
    Y = make_Y_df()
    Y["t1"] = ["x", "y", "z", "x", "y", "z"]
    _raises(r"Y: column 't1' is not numeric", Y)


def test_Y_categorical_column_named():
    Y = make_Y_df()
    Y["t1"] = pd.Categorical(["x", "y", "z", "x", "y", "z"])
    _raises(r"Y: column 't1' is categorical", Y)


def test_Y_object_array_refused():
    Y = make_Y().astype(object)
    Y[1, 2] = "oops"
    _raises(r"Y: column 'trait2' is not numeric", Y)


def test_Y_none():
    _raises(r"Y: is None", None)


# ----------------------------------------------------------------------------- refusals: X


def test_X_wrong_rows_names_both_shapes():
    msg = _raises(r"X: has 5 rows but Y has 6 rows", make_Y(), np.ones((5, 2)))
    assert "(5, 2)" in msg and "(6, 3)" in msg


def test_X_index_mismatch_names_ids():
    Y = make_Y_df()
    X = pd.DataFrame({"age": np.arange(6.0)}, index=["id0", "id1", "id2", "id3", "id4", "zz"])
    msg = _raises(r"X: index does not match Y's index", Y, X)
    assert "'id5'" in msg and "'zz'" in msg


def test_X_nan_refused():
    X = np.arange(6.0).reshape(6, 1)
    X[2, 0] = np.nan
    _raises(r"X: contains 1 missing \(NaN\) or infinite", make_Y(), X)


def test_X_inf_refused():
    X = np.arange(6.0).reshape(6, 1)
    X[2, 0] = np.inf
    _raises(r"X: contains 1 missing \(NaN\) or infinite", make_Y(), X)


def test_X_collinear_names_columns():
    Y = make_Y_df()
    X = pd.DataFrame(
        {"a": np.arange(6.0), "b": np.arange(6.0) ** 2, "c": 2 * np.arange(6.0) + 1},
        index=Y.index,
    )
    msg = _raises(r"X: columns are collinear", Y, X)
    assert "'a'" in msg and "'c'" in msg and "'(Intercept)'" in msg
    assert "'b'" not in msg


def test_X_constant_non_one_column_collinear_with_intercept():
    X = np.column_stack([np.arange(6.0), np.full(6, 3.0)])
    msg = _raises(r"X: columns are collinear", make_Y(), X)
    assert "'x1'" in msg and "'(Intercept)'" in msg and "'x0'" not in msg


def test_X_more_columns_than_rows():
    rng = np.random.default_rng(3)
    _raises(r"X: columns are collinear .*more columns", make_Y(), rng.normal(size=(6, 7)))


def test_X_duplicated_column_names():
    Y = make_Y_df()
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(6, 2)), index=Y.index, columns=["a", "a"])
    _raises(r"X: duplicated column names", Y, X)


# ----------------------------------------------------------------------------- refusals: X_F


def test_X_F_intercept_refused():
    X_F = np.column_stack([np.ones(6), np.arange(6.0)])
    _raises(r"X_F: column\(s\) 'xf0' are constant .*factor intercept is fixed at 0", make_Y(), X_F=X_F)


def test_X_F_collinear():
    X_F = np.column_stack([np.arange(6.0), 3 * np.arange(6.0)])
    msg = _raises(r"X_F: columns are collinear", make_Y(), X_F=X_F)
    assert "'xf0'" in msg and "'xf1'" in msg


def test_X_F_wrong_rows():
    _raises(r"X_F: has 4 rows but Y has 6 rows", make_Y(), X_F=np.arange(4.0).reshape(4, 1))


def test_X_F_nan():
    X_F = np.arange(6.0).reshape(6, 1)
    X_F[0, 0] = np.nan
    _raises(r"X_F: contains 1 missing", make_Y(), X_F=X_F)


# ----------------------------------------------------------------------------- refusals: Z


def test_Z_wrong_rows():
    msg = _raises(r"Z: has 5 rows but Y has 6 rows", make_Y(), Z=np.eye(5))
    assert "(5, 5)" in msg and "(6, 3)" in msg


def test_Z_nan():
    Z = np.eye(6)
    Z[1, 1] = np.nan
    _raises(r"Z: contains 1 missing \(NaN\) or infinite", make_Y(), Z=Z)


def test_Z_zero_row_named():
    Y = make_Y_df()
    Z = pd.DataFrame(np.eye(6), index=Y.index, columns=list("abcdef"))
    Z.loc["id3", "d"] = 0.0
    _raises(r"Z: row\(s\) for individual\(s\) 'id3' are all zero", Y, Z=Z)


def test_Z_index_mismatch():
    Y = make_Y_df()
    Z = pd.DataFrame(np.eye(6), index=[f"other{i}" for i in range(6)], columns=list("abcdef"))
    _raises(r"Z: index does not match Y's index", Y, Z=Z)


def test_Z_duplicated_levels():
    Y = make_Y_df()
    Z = pd.DataFrame(np.eye(6), index=Y.index, columns=list("abcdea"))
    _raises(r"Z: duplicated level names .*'a'", Y, Z=Z)


# ----------------------------------------------------------------------------- refusals: K


def test_K_not_square():
    _raises(r"K: must be square but has shape \(6, 5\)", make_Y(), K=np.ones((6, 5)))


def test_K_not_2d():
    _raises(r"K: must be 2-D", make_Y(), K=np.ones(6))


def test_K_nan():
    K = spd(6)
    K[0, 0] = np.nan
    _raises(r"K: contains 1 missing \(NaN\) or infinite", make_Y(), K=K)


def test_K_inf():
    K = spd(6)
    K[1, 1] = np.inf
    _raises(r"K: contains 1 missing \(NaN\) or infinite", make_Y(), K=K)


def test_K_not_symmetric_names_rows():
    Y = make_Y_df()
    K = pd.DataFrame(spd(6), index=Y.index, columns=Y.index)
    K.loc["id1", "id4"] += 0.3
    msg = _raises(r"K: not symmetric \(max \|K - K\.T\| = 0\.3 at rows", Y, K=K)
    assert "'id1'" in msg and "'id4'" in msg and "(K + K.T) / 2" in msg


def test_K_not_psd():
    K = np.eye(6)
    K[0, 1] = K[1, 0] = 2.0  # eigenvalues -1, 3, 1...
    msg = _raises(r"K: not positive semi-definite \(smallest eigenvalue -1", make_Y(), K=K)
    assert "ridge" in msg and "nearest-PSD" in msg


def test_K_size_does_not_match_Z_names_both_shapes():
    Z = np.kron(np.eye(3), np.ones((2, 1)))
    msg = _raises(r"K: has shape \(4, 4\) but Z has shape \(6, 3\)", make_Y(), Z=Z, K=np.eye(4))
    assert "columns" in msg


def test_K_levels_missing_from_K_named():
    Y = make_Y_df()
    levels = ["a", "b", "c"]
    Z = pd.DataFrame(np.kron(np.eye(3), np.ones((2, 1))), index=Y.index, columns=levels)
    K = pd.DataFrame(spd(3), index=["a", "b", "q"], columns=["a", "b", "q"])
    msg = _raises(r"K: levels do not match Z's columns", Y, Z=Z, K=K)
    assert "missing from K ('c')" in msg and "extra levels in K ('q')" in msg


def test_K_levels_do_not_match_Y_when_Z_none():
    Y = make_Y_df()
    names = list(Y.index)[:-1] + ["stranger"]
    K = pd.DataFrame(spd(6), index=names, columns=names)
    msg = _raises(r"K: levels do not match Y's index", Y, K=K)
    assert "'id5'" in msg and "'stranger'" in msg


def test_K_duplicated_levels():
    names = ["a", "b", "a", "c", "d", "e"]
    K = pd.DataFrame(spd(6), index=names, columns=names)
    _raises(r"K: duplicated level names .*'a'", make_Y(), K=K)


def test_K_index_and_columns_differ():
    K = pd.DataFrame(spd(6), index=list("abcdef"), columns=list("abcdeg"))
    _raises(r"K: index and columns name different levels", make_Y(), K=K)


# ----------------------------------------------------------------------------- refusals: ints


@pytest.mark.parametrize("bad", [True, 2.0, "2", None])
def test_n_factors_not_int(bad):
    _raises(r"n_factors: must be an int", make_Y(), n_factors=bad)


@pytest.mark.parametrize("bad", [0, -1])
def test_n_factors_too_small(bad):
    _raises(r"n_factors: must be >= 1", make_Y(), n_factors=bad)


def test_n_factors_more_than_traits():
    _raises(r"n_factors: 4 is more factors than traits", make_Y(p=3), n_factors=4)


@pytest.mark.parametrize("bad", [False, 3.0, "10"])
def test_h2_divisions_not_int(bad):
    _raises(r"h2_divisions: must be an int", make_Y(), h2_divisions=bad)


@pytest.mark.parametrize("bad", [1, 0, -5])
def test_h2_divisions_too_small(bad):
    _raises(r"h2_divisions: must be >= 2", make_Y(), h2_divisions=bad)
