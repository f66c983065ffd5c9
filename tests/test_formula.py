"""Tests for slamjax.formula (lme4-style formulas -> design matrices, run before any JAX code)."""

import os

import numpy as np
import pandas as pd
import pytest

from slamjax._errors import SlamjaxInputError
from slamjax.formula import Design, RandomTerm, build_design, check_relationship, wide

WHEAT_DIR = "/work/shared/data/wheat"


def wheat_like():
    # 6 plots: 2 populations, 4 lines (L1, L2 in A; L3, L4 in B), lines replicated
    return pd.DataFrame(
        {
            "Population": ["B", "A", "A", "B", "A", "B"],
            "Line": ["L3", "L1", "L2", "L4", "L1", "L3"],
        },
        index=[f"p{i}" for i in range(6)],
    )


def mice_like():
    return pd.DataFrame(
        {
            "sex": ["M", "F", "F", "M", "M", "F", "M"],
            "season": ["winter", "summer", "winter", "summer", "winter", "winter", "summer"],
            "weight": [20.0, 18.5, 19.0, 22.0, 21.5, 17.0, 23.0],
            "mouse": [101, 7, 12, 101, 7, 33, 12],  # integer IDs
            "cage": ["c2", "c1", "c1", "c2", "c3", "c3", "c1"],
        },
        index=[f"m{i}" for i in range(7)],
    )


def spd_df(levels, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(len(levels), len(levels)))
    return pd.DataFrame(a @ a.T + len(levels) * np.eye(len(levels)), index=levels, columns=levels)


# ----------------------------------------------------------------------------- positive cases


def test_module_does_not_import_jax():
    import slamjax.formula as f

    src = open(f.__file__).read()
    assert "import jax" not in src and "from jax" not in src


def test_wheat_like_design():
    d = wheat_like()
    D = build_design(d, "~ Population + (1|Line)")
    assert isinstance(D, Design)
    # lme4: model.matrix(~ Population) with treatment contrasts (A is the reference level)
    assert list(D.X.columns) == ["(Intercept)", "Population[T.B]"]
    assert list(D.X.index) == list(d.index)
    np.testing.assert_array_equal(
        D.X.to_numpy(),
        [[1, 1], [1, 0], [1, 0], [1, 1], [1, 0], [1, 1]],
    )
    assert D.X.to_numpy().dtype == np.float64
    assert len(D.random) == 1
    t = D.random[0]
    assert isinstance(t, RandomTerm) and t.group == "Line"
    assert t.levels == ["L1", "L2", "L3", "L4"]
    np.testing.assert_array_equal(
        t.Z,
        [
            [0, 0, 1, 0],
            [1, 0, 0, 0],
            [0, 1, 0, 0],
            [0, 0, 0, 1],
            [1, 0, 0, 0],
            [0, 0, 1, 0],
        ],
    )
    assert t.Z.dtype == np.float64 and t.K.dtype == np.float64
    np.testing.assert_array_equal(t.K, np.eye(4))
    # no factor_formula: same random terms, no factor fixed effects
    assert D.factor_random[0] is t
    assert D.X_F.shape == (6, 0) and list(D.X_F.index) == list(d.index)


def test_wheat_like_with_relmat_and_factor_formula():
    d = wheat_like()
    K = spd_df(["L4", "L2", "L3", "L1", "L9"])  # K's order defines the level order; L9 not in data
    D = build_design(
        d,
        "~ Population + (1|Line)",
        relmat={"Line": K},
        factor_formula="~ 0 + Population + (1|Line)",
    )
    t = D.random[0]
    assert t.levels == ["L4", "L2", "L3", "L1", "L9"]
    np.testing.assert_allclose(t.K, K.to_numpy())
    np.testing.assert_array_equal(
        t.Z,
        [
            [0, 0, 1, 0, 0],
            [0, 0, 0, 1, 0],
            [0, 1, 0, 0, 0],
            [1, 0, 0, 0, 0],
            [0, 0, 0, 1, 0],
            [0, 0, 1, 0, 0],
        ],
    )
    np.testing.assert_array_equal(t.Z[:, 4], 0.0)  # level only in K: zero column
    # factor fixed effects: treatment contrasts with the intercept dropped (factor intercept = 0)
    assert list(D.X_F.columns) == ["Population[T.B]"]
    np.testing.assert_array_equal(D.X_F.to_numpy()[:, 0], [1, 0, 0, 1, 0, 1])
    assert D.factor_random[0] is t


def test_relmat_tuple_and_dict_forms_and_column_reordering():
    d = wheat_like()
    K = spd_df(["L1", "L2", "L3", "L4"], seed=3)
    ref = build_design(d, "~ (1|Line)", relmat={"Line": K}).random[0]
    by_tuple = build_design(d, "~ (1|Line)", relmat={"Line": (K.to_numpy(), list(K.index))}).random[0]
    by_dict = build_design(
        d, "~ (1|Line)", relmat={"Line": {"K": K.to_numpy(), "levels": list(K.index)}}
    ).random[0]
    shuffled = build_design(
        d, "~ (1|Line)", relmat={"Line": K[["L3", "L1", "L4", "L2"]]}
    ).random[0]
    for t in (by_tuple, by_dict, shuffled):
        assert t.levels == ref.levels == ["L1", "L2", "L3", "L4"]
        np.testing.assert_allclose(t.K, ref.K)
        np.testing.assert_array_equal(t.Z, ref.Z)


def test_relmat_labels_compared_as_strings():
    d = pd.DataFrame({"g": [2, 1, 2, 3]}, index=list("abcd"))
    K = pd.DataFrame(np.eye(3) + 0.5, index=[1, 2, 3], columns=[1, 2, 3])
    t = build_design(d, "~ (1|g)", relmat={"g": K}).random[0]
    assert t.levels == ["1", "2", "3"]
    np.testing.assert_array_equal(t.Z, [[0, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])


def test_mice_like_design():
    d = mice_like()
    D = build_design(d, "~ sex + season + weight + sex:season + (1|mouse) + (1|cage)")
    assert list(D.X.columns) == [
        "(Intercept)",
        "sex[T.M]",
        "season[T.winter]",
        "weight",
        "sex[T.M]:season[T.winter]",
    ]
    sexM = np.array([1, 0, 0, 1, 1, 0, 1])
    winter = np.array([1, 0, 1, 0, 1, 1, 0])
    expected = np.column_stack([np.ones(7), sexM, winter, d["weight"], sexM * winter])
    np.testing.assert_array_equal(D.X.to_numpy(), expected)
    mouse, cage = D.random
    assert (mouse.group, cage.group) == ("mouse", "cage")
    assert mouse.levels == ["7", "12", "33", "101"]  # integer IDs in numeric order, as strings
    np.testing.assert_array_equal(
        mouse.Z,
        [
            [0, 0, 0, 1],
            [1, 0, 0, 0],
            [0, 1, 0, 0],
            [0, 0, 0, 1],
            [1, 0, 0, 0],
            [0, 0, 1, 0],
            [0, 1, 0, 0],
        ],
    )
    assert cage.levels == ["c1", "c2", "c3"]
    np.testing.assert_array_equal(
        cage.Z,
        [[0, 1, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [1, 0, 0]],
    )


def test_two_random_terms_like_lme4():
    # lme4: levels of a character grouping variable are sorted; Z_g has one column per level
    d = pd.DataFrame(
        {"g": ["b", "a", "c", "a", "b"], "h": ["y", "y", "x", "z", "x"], "x": [0.5, 1, 2, 3, 4]},
        index=["i1", "i2", "i3", "i4", "i5"],
    )
    D = build_design(d, "~ x + (1|g) + (1|h)")
    assert list(D.X.columns) == ["(Intercept)", "x"]
    g, h = D.random
    assert g.levels == ["a", "b", "c"] and h.levels == ["x", "y", "z"]
    np.testing.assert_array_equal(
        g.Z, [[0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]]
    )
    np.testing.assert_array_equal(
        h.Z, [[0, 1, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 0, 0]]
    )
    np.testing.assert_array_equal(g.K, np.eye(3))
    np.testing.assert_array_equal(h.K, np.eye(3))
    assert [t.group for t in D.factor_random] == ["g", "h"]


def test_no_intercept_and_intercept_only():
    d = pd.DataFrame({"x": [1.0, 2.0, 4.0], "g": ["a", "b", "a"], "p": ["u", "v", "v"]})
    D = build_design(d, "~ 0 + x + (1|g)")
    assert list(D.X.columns) == ["x"]
    D = build_design(d, "~ 0 + p + (1|g)")  # no intercept: every level of p
    assert list(D.X.columns) == ["p[u]", "p[v]"]
    np.testing.assert_array_equal(D.X.to_numpy(), [[1, 0], [0, 1], [0, 1]])
    D = build_design(d, "~ 1 + (1|g)")
    assert list(D.X.columns) == ["(Intercept)"]
    D = build_design(d, "~ (1|g)")  # lme4: the intercept is implicit
    assert list(D.X.columns) == ["(Intercept)"]
    D = build_design(d, "~ x")  # no random terms
    assert D.random == [] and D.factor_random == []


def test_categorical_and_boolean_columns():
    d = pd.DataFrame(
        {
            "c": pd.Categorical(["lo", "hi", "mid", "hi"], categories=["lo", "mid", "hi", "unused"]),
            "b": [True, False, True, False],
        }
    )
    D = build_design(d, "~ b + (1|c)")
    assert list(D.X.columns) == ["(Intercept)", "b[T.True]"]
    np.testing.assert_array_equal(D.X["b[T.True]"], [1, 0, 1, 0])
    t = D.random[0]
    assert t.levels == ["lo", "mid", "hi"]  # category order, unused category dropped
    np.testing.assert_array_equal(t.Z, [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]])
    D = build_design(d, "~ 0 + c")
    assert list(D.X.columns) == ["c[lo]", "c[mid]", "c[hi]"]


def test_factor_formula_random_terms_and_intercept_dropped():
    d = mice_like()
    D = build_design(d, "~ sex + (1|mouse) + (1|cage)", factor_formula="~ weight + (1|cage)")
    assert list(D.X_F.columns) == ["weight"]
    np.testing.assert_array_equal(D.X_F["weight"], d["weight"])
    assert len(D.factor_random) == 1 and D.factor_random[0] is D.random[1]
    D = build_design(d, "~ sex + (1|mouse)", factor_formula="~ (1|cage)")
    assert D.X_F.shape == (7, 0)
    assert [t.group for t in D.factor_random] == ["cage"]
    assert D.factor_random[0].levels == ["c1", "c2", "c3"]
    D = build_design(d, "~ sex + (1|mouse)", factor_formula="~ season - 1")
    assert list(D.X_F.columns) == ["season[T.winter]"] and D.factor_random == []


def test_index_name_as_grouping_variable():
    d = wheat_like().rename_axis("plot")  # index p0..p5 named "plot", not a column
    D = build_design(d, "~ (1|plot)")
    assert D.random[0].levels == sorted(d.index)
    np.testing.assert_array_equal(D.random[0].Z, np.eye(6))


@pytest.mark.skipif(
    not os.path.exists(f"{WHEAT_DIR}/phenotypes.csv"), reason="wheat data not available"
)
def test_real_wheat_data_identity_Z_in_K_order():
    pheno = pd.read_csv(f"{WHEAT_DIR}/phenotypes.csv", index_col="line")
    A = pd.read_csv(f"{WHEAT_DIR}/pedigree_relationship.csv.gz", index_col=0)
    D = build_design(pheno, "~ 1 + (1|line)", relmat={"line": A})
    assert list(D.X.columns) == ["(Intercept)"] and D.X.shape == (pheno.shape[0], 1)
    t = D.random[0]
    assert t.levels == [str(x) for x in A.index]
    np.testing.assert_allclose(t.K, A.to_numpy(), rtol=0, atol=1e-12)
    expected = (pheno.index.to_numpy()[:, None] == np.asarray(t.levels)[None, :]).astype(float)
    np.testing.assert_array_equal(t.Z, expected)
    # rows put in K's order: Z is the identity
    pos = {x: i for i, x in enumerate(pheno.index)}
    np.testing.assert_array_equal(t.Z[[pos[x] for x in t.levels]], np.eye(len(t.levels)))


def test_check_relationship_symmetrises():
    K = np.array([[2.0, 1.0], [1.0 + 1e-12, 2.0]])
    mat, levels = check_relationship((K, ["a", "b"]), "g")
    assert levels == ["a", "b"]
    np.testing.assert_array_equal(mat, mat.T)


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "data, formula, kwargs, match",
    [
        # data
        (np.zeros((3, 2)), "~ 1", {}, r"data: must be a pandas DataFrame"),
        (pd.DataFrame({"x": []}), "~ x", {}, r"data: has no rows"),
        (
            pd.DataFrame({"x": [1.0, 2.0, 3.0]}, index=["a", "b", "a"]),
            "~ x",
            {},
            r"data: duplicated index.*'a'",
        ),
        # formula syntax
        (wheat_like(), "Population + (1|Line)", {}, r"formula: .*has no '~'.*\(1\|Line\)"),
        (wheat_like(), "y ~ Population", {}, r"formula: .*left-hand side"),
        (wheat_like(), 3, {}, r"formula: must be a string"),
        (wheat_like(), "~ Population + (Line|Population)", {}, r"\(Line\|Population\).*random slopes.*not supported yet"),
        (wheat_like(), "~ (1|Population/Line)", {}, r"\(1\|Population/Line\).*nested.*not supported yet"),
        (wheat_like(), "~ (1||Line)", {}, r"\(1\|\|Line\).*'\|\|'.*not supported yet"),
        (wheat_like(), "~ (1|Line) + (1|Line)", {}, r"'\(1\|Line\)' appears twice"),
        (wheat_like(), "~ Population + (1|Line", {}, r"unbalanced parentheses"),
        (wheat_like(), "~ Population + + (1|Line)", {}, r"empty term"),
        # unknown columns
        (wheat_like(), "~ Populaton + (1|Line)", {}, r"'Populaton' is not a column.*did you mean 'Population'.*available columns"),
        (wheat_like(), "~ Population + (1|line)", {}, r"grouping variable of \(1\|line\) 'line' is not a column.*'Line'"),
        (wheat_like(), "~ Population + (1|Line)", {"factor_formula": "~ Pop"}, r"factor_formula: variable 'Pop' is not a column"),
        (
            pd.DataFrame({"p": ["a", "a", "a"], "b": [True] * 3, "x": [1.0, 2.0, 4.0]}),
            "~ x + p",
            {},
            r"formula: categorical variable 'p' has a single level \('a'\)",
        ),
        (
            pd.DataFrame({"p": ["a", "a", "a"], "b": [True] * 3, "x": [1.0, 2.0, 4.0]}),
            "~ x",
            {"factor_formula": "~ b"},
            r"factor_formula: categorical variable 'b' has a single level \('True'\)",
        ),
        # missing values
        (
            pd.DataFrame({"x": [1.0, np.nan, 3.0, np.nan], "g": list("abab")}, index=list("pqrs")),
            "~ x + (1|g)",
            {},
            r"column 'x' .*2 missing value.*'q', 's'",
        ),
        (
            pd.DataFrame({"g": ["a", None, "b"]}, index=list("pqr")),
            "~ (1|g)",
            {},
            r"column 'g' .*missing value.*'q'",
        ),
        # numeric grouping variable
        (
            pd.DataFrame({"weight": [1.5, 2.5, 1.5]}),
            "~ (1|weight)",
            {},
            r"\(1\|weight\): weight is numeric \(float64\).*must hold labels.*astype\(str\)",
        ),
        # collinear fixed effects
        (
            pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [2.0, 4.0, 6.0, 8.0], "c": [0, 1, 0, 2.0]}),
            "~ a + b + c",
            {},
            r"formula: columns are collinear.*'a', 'b'",
        ),
        (
            pd.DataFrame({"pop": list("aabbcc"), "region": list("NNSSSS"), "g": list("uvwxyz")}),
            "~ pop + region + (1|g)",
            {},
            r"collinear.*'pop\[T.b\]', 'pop\[T.c\]', 'region\[T.S\]'",
        ),
        (
            pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, 1.0, 1.0]}),
            "~ a",
            {"factor_formula": "~ b"},
            r"factor_formula: columns are collinear.*'\(Intercept\)', 'b'",
        ),
        # relmat
        (wheat_like(), "~ (1|Line)", {"relmat": {"Population": np.eye(2)}}, r"relmat: key\(s\) 'Population' are not grouping variables.*\(1\|Line\)"),
        (wheat_like(), "~ (1|Line)", {"relmat": [np.eye(4)]}, r"relmat: must be a dict"),
        (wheat_like(), "~ (1|Line)", {"relmat": {"Line": np.eye(4)}}, r"relmat\['Line'\]: got ndarray.*level_names"),
        (
            wheat_like(),
            "~ (1|Line)",
            {"relmat": {"Line": spd_df(["L1", "L2"])}},
            r"relmat\['Line'\]: 2 level\(s\) of 'Line' in data are missing.*'L3', 'L4'",
        ),
        (
            wheat_like(),
            "~ (1|Line)",
            {"relmat": {"Line": (np.eye(5), ["L1", "L2", "L3", "L4", "L1"])}},
            r"relmat\['Line'\]: duplicated level names 'L1'",
        ),
        (
            wheat_like(),
            "~ (1|Line)",
            {"relmat": {"Line": pd.DataFrame(np.eye(4), index=["L1", "L2", "L3", "L4"], columns=["L1", "L2", "L3", "L5"])}},
            r"index and columns name different levels.*'L4'.*'L5'",
        ),
        (
            wheat_like(),
            "~ (1|Line)",
            {"relmat": {"Line": (np.array([[1.0, 0.5], [0.2, 1.0]]), ["a", "b"])}},
            r"relmat\['Line'\]: not symmetric",
        ),
        (
            wheat_like(),
            "~ (1|Line)",
            {"relmat": {"Line": (np.array([[1.0, 2.0], [2.0, 1.0]]), ["a", "b"])}},
            r"relmat\['Line'\]: not positive semi-definite",
        ),
        (
            wheat_like(),
            "~ (1|Line)",
            {"relmat": {"Line": (np.ones((2, 3)), ["a", "b"])}},
            r"relmat\['Line'\]: must be square",
        ),
        (
            wheat_like(),
            "~ (1|Line)",
            {"relmat": {"Line": (np.array([[1.0, np.nan], [np.nan, 1.0]]), ["a", "b"])}},
            r"relmat\['Line'\]: has 2 missing or infinite",
        ),
        (
            wheat_like(),
            "~ (1|Line)",
            {"relmat": {"Line": (np.eye(3), ["a", "b"])}},
            r"2 level names for a 3 x 3 matrix",
        ),
    ],
)
def test_refusals(data, formula, kwargs, match):
    with pytest.raises(SlamjaxInputError, match=match):
        build_design(data, formula, **kwargs)


def test_missing_levels_message_lists_five_and_count():
    d = pd.DataFrame({"g": [f"x{i}" for i in range(8)]})
    K = spd_df(["x0"])
    with pytest.raises(SlamjaxInputError, match=r"7 level\(s\).*'x1', 'x2', 'x3', 'x4', 'x5', \.\.\. \(7 in all\)"):
        build_design(d, "~ (1|g)", relmat={"g": K})


def test_refusal_is_a_value_error():
    with pytest.raises(ValueError):
        build_design(wheat_like(), "~ Nope")


# ----------------------------------------------------------------------------- wide()


def tall():
    return pd.DataFrame(
        {
            "ind": ["b", "b", "a", "c", "a", "c"],
            "tr": ["height", "yield", "yield", "height", "height", "flower"],
            "val": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )


def test_wide_round_trip():
    t = tall()
    w = wide(t, id="ind", trait="tr", value="val")
    assert list(w.index) == ["b", "a", "c"] and w.index.name == "ind"
    assert list(w.columns) == ["height", "yield", "flower"] and w.columns.name == "tr"
    expected = np.array([[1.0, 2.0, np.nan], [5.0, 3.0, np.nan], [4.0, np.nan, 6.0]])
    np.testing.assert_array_equal(w.to_numpy(), expected)
    back = (
        w.stack(future_stack=True).dropna().rename("val").reset_index()
        .sort_values(["ind", "tr"]).reset_index(drop=True)
    )
    ref = t.sort_values(["ind", "tr"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back, ref, check_names=False)


def test_wide_refusals():
    t = pd.concat([tall(), tall().iloc[[0, 2]]], ignore_index=True)
    with pytest.raises(SlamjaxInputError, match=r"duplicated \(ind, tr\) pairs \('b', 'height'\), \('a', 'yield'\)"):
        wide(t, id="ind", trait="tr", value="val")
    with pytest.raises(SlamjaxInputError, match=r"id: column 'id' is not in df"):
        wide(tall(), id="id", trait="tr", value="val")
    with pytest.raises(SlamjaxInputError, match=r"value: column 'vals' is not in df.*did you mean 'val'"):
        wide(tall(), id="ind", trait="tr", value="vals")
    t = tall()
    t.loc[1, "ind"] = None
    with pytest.raises(SlamjaxInputError, match=r"id: column 'ind' has 1 missing"):
        wide(t, id="ind", trait="tr", value="val")
