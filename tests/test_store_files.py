"""A run store is plain data: the model and checkpoint round-trip without pickles, and a damaged,
edited or planted store is refused with a SlamjaxInputError naming the file."""

from __future__ import annotations

import json
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import slamjax as sj
from slamjax._plain import model_arguments_from_plain, model_to_plain
from slamjax._store import RunStore

from _models import random_design, tiny_model
from _runs import assert_same_run

SETTINGS = dict(num_warmup=4, num_samples=20, thin=2, num_chains=2, chunk_size=10, seed=5, progress=False)
PACKAGE = Path(sj.__file__).parent


def _reopened_model(model: sj.Model, path: Path) -> sj.Model:
    """The model written into a store's files and rebuilt from them."""
    store = RunStore(path)
    store.create(*model_to_plain(model), {})
    (path / "checkpoint.npz").touch()  # read_model wants a run
    tree, arrays = store.read_model()
    names = set(model.constructor_arguments()) | {"Y"}
    return sj.Model(**model_arguments_from_plain(tree, arrays, names, "model.json"))


def _formula_model(priors: sj.Priors) -> sj.Model:
    """A formula model whose covariates hold every kind of column a store keeps."""
    rng = np.random.default_rng(4)
    n = 24
    ids = [f"id{i}" for i in range(n)]
    _, K = random_design(n, n, 4)
    data = pd.DataFrame({
        "dose": rng.normal(size=n),
        "count": rng.integers(0, 5, size=n).astype(np.int32),
        "treated": np.arange(n) % 2 == 0,
        "site": rng.choice(["s0", "s1", "s2"], size=n).tolist(),
        "season": pd.Categorical(rng.choice(["winter", "summer", "autumn"], size=n),
                                 categories=["winter", "summer", "autumn"]),
        "grade": pd.Categorical(rng.choice(["lo", "mid", "hi"], size=n), categories=["lo", "mid", "hi"], ordered=True),
        "score": pd.array([None if i == 3 else i for i in range(n)], dtype="Int64"),
        "id": pd.Series(ids, dtype=object).values,
    }, index=pd.Index(ids, name="individual"))
    Y = pd.DataFrame(rng.normal(size=(n, 3)), index=ids, columns=["height", "weight", "yield"])
    Y.iloc[2, 1] = np.nan
    return sj.Model(
        Y=Y, data=data, formula="~ dose + count + treated + site + season + grade + (1|id)",
        factor_formula="~ dose + (1|id)", relmat={"id": pd.DataFrame(K, index=ids, columns=ids)},
        n_factors=2, h2_divisions=6, priors=priors, scale_Y=True,
    )


def test_a_formula_model_with_every_kind_of_column_is_rebuilt_the_same(tmp_path):
    priors = sj.Priors(
        Lambda=sj.priors.TPB(a=0.4, b=0.6), B=sj.priors.ARD(nu=4.0, row_rate=2), B_F=sj.priors.ARD(row_shape=3.0),
        tot_Eta_var=sj.VarianceComponent(V=0.3, nu=4), h2=lambda grid: np.exp(-3.0 * grid[:, 0]),
        F_h2=np.linspace(1.0, 2.0, 6), intercept_precision=0.25,
    )
    model = _formula_model(priors)
    again = _reopened_model(model, tmp_path / "run")
    before, after = model.constructor_arguments(), again.constructor_arguments()
    pd.testing.assert_frame_equal(after["data"], before["data"])  # dtypes, category order and index name too
    pd.testing.assert_frame_equal(after["Y"], before["Y"])
    pd.testing.assert_frame_equal(after["relmat"]["id"], before["relmat"]["id"])
    assert (after["formula"], after["factor_formula"]) == (before["formula"], before["factor_formula"])
    assert again.fixed_names == model.fixed_names and again.factor_fixed_names == model.factor_fixed_names
    for name in ("X", "X_F", "Y", "K", "Z"):
        np.testing.assert_array_equal(getattr(again.inputs, name), getattr(model.inputs, name), err_msg=name)
    np.testing.assert_array_equal(again.data.trait_log_prior, model.data.trait_log_prior)  # bit for bit
    np.testing.assert_array_equal(again.data.factor_log_prior, model.data.factor_log_prior)
    assert again.priors.Lambda == priors.Lambda and again.priors.B == priors.B and again.priors.B_F == priors.B_F
    assert again.priors.tot_Eta_var == priors.tot_Eta_var and again.priors.intercept_precision == 0.25


def test_h2_prior_marginals_are_stored_as_their_weights_over_the_grid(tmp_path):
    """A list of marginal functions (one per random effect) comes back as the weights it gave,
    which give the same log prior bit for bit."""
    from _models import three_effect_model

    base = three_effect_model(n=20, p=3, k=2, h2_divisions=5)
    marginals = [lambda h: 1.5 - h, lambda h: np.exp(-4.0 * h), lambda h: 1.0 / (1.0 + h)]
    model = sj.Model(**{**base.constructor_arguments(),
                        "priors": sj.Priors(h2=marginals, F_h2=lambda grid: 1.0 + grid.sum(axis=1))})
    again = _reopened_model(model, tmp_path / "run")
    assert isinstance(again.priors.h2, np.ndarray) and again.priors.h2.shape == (model.grid.shape[0],)
    np.testing.assert_array_equal(again.data.trait_log_prior, model.data.trait_log_prior)
    np.testing.assert_array_equal(again.data.factor_log_prior, model.data.factor_log_prior)


def test_what_a_store_cannot_keep_is_refused_before_sampling(tmp_path):
    class Custom(sj.priors.MGPS):
        pass

    model = tiny_model(n=12, p=3, k=2, priors=sj.Priors(Lambda=Custom()))
    with pytest.raises(sj.SlamjaxInputError, match=r"priors\.Lambda is a Custom; a run store keeps the priors"):
        sj.sample(model, store=tmp_path / "custom", **SETTINGS)
    assert not (tmp_path / "custom").exists()
    ids = [f"i{i}" for i in range(12)]
    data = pd.DataFrame({"x": pd.Series([1, "a"] * 6, dtype=object).values, "id": ids}, index=ids)
    Y = pd.DataFrame(np.random.default_rng(0).normal(size=(12, 3)), index=ids)
    with pytest.raises(sj.SlamjaxInputError, match=r"data\.column0 holds Python objects \(e\.g\. 1\)"):
        model_to_plain(sj.Model(Y=Y, data=data, formula="~ x + (1|id)", n_factors=2, h2_divisions=4))


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A finished run on disk (the tiny model of test_store.py: compiled loops are shared)."""
    path = tmp_path_factory.mktemp("stored") / "run"
    sj.sample(tiny_model(n=30, p=4, k=2, fraction_missing=0.1), store=path, **SETTINGS)
    return path


@pytest.fixture
def copy(stored, tmp_path):
    return Path(shutil.copytree(stored, tmp_path / "run"))


class _Payload:
    """Unpickling this writes a marker file: proof that a pickle was read."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "unpickled"))


def _edit_json(path: Path, edit) -> None:
    tree = json.loads(path.read_text())
    edit(tree)
    path.write_text(json.dumps(tree))


def _edit_npz(path: Path, edit) -> None:
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    edit(arrays)
    np.savez(path, **arrays)


def _edit_progress(edit):
    def edit_arrays(arrays):
        progress = json.loads(str(arrays["progress"][()]))
        edit(progress)
        arrays["progress"] = np.array(json.dumps(progress))

    return lambda run: _edit_npz(run / "checkpoint.npz", edit_arrays)


def _set_argument(name, value):
    return lambda run: _edit_json(run / "model.json", lambda tree: tree["arguments"].__setitem__(name, value))


def _set_prior(value):
    return lambda run: _edit_json(
        run / "model.json", lambda tree: tree["arguments"]["priors"]["$priors"].__setitem__("Lambda", value)
    )


def _truncate(name):
    def edit(run):
        payload = (run / name).read_bytes()
        (run / name).write_bytes(payload[: len(payload) // 2])

    return edit


def _plant_pickle(name):
    return lambda run: (run / name).write_bytes(pickle.dumps(_Payload(run.parent / "marker")))


def _add_codec(name: str, configuration: dict):
    meta = "draws.zarr/h2/zarr.json"
    return lambda run: _edit_json(run / meta, lambda tree: tree["codecs"].append(
        {"name": name, "configuration": configuration}))


def _old_layout(run):
    for name in ("checkpoint.npz", "model.npz", "model.json"):
        (run / name).unlink()
    for name in ("checkpoint.pkl", "model.pkl"):
        _plant_pickle(name)(run)


TAMPERINGS = {
    "model.json not JSON": (_truncate("model.json"), r"model\.json: not valid JSON"),
    "model.json missing": (lambda run: (run / "model.json").unlink(), r"model\.json: missing"),
    "model.json other format": (lambda run: _edit_json(run / "model.json", lambda t: t.update(format=2)),
                                r"store format 2; this slamjax reads format 1"),
    "model.json unknown argument": (_set_argument("colour", "red"), r"the model arguments must be"),
    "model.json wrong type": (_set_argument("h2_divisions", "five"),
                              r"model\.json: the stored model cannot be rebuilt"),
    "model.json more factors": (_set_argument("n_factors", 3),
                                r"checkpoint\.npz: 'states\.Lambda' has shape \(2, 2, 4\).*needs \(2, 3, 4\)"),
    "model.json unknown prior class": (_set_prior({"class": "os.system", "fields": {"command": "touch x"}}),
                                       r"priors\.Lambda must be \{'class': one of \['ARD', 'Horseshoe', 'MGPS', "
                                       r"'TPB'\]"),
    "model.json unknown prior field": (_set_prior({"class": "MGPS", "fields": {"nu": 3.0}}),
                                       r"MGPS needs the number fields"),
    "model.json unknown node": (_set_argument("X", {"$object": "builtins.eval"}), r"X has the unknown kind '\$object'"),
    "model.json array not there": (_set_argument("X", {"$array": "elsewhere"}), r"refers to an array 'elsewhere'"),
    "model.npz truncated": (_truncate("model.npz"), r"model\.npz: cannot be read as an npz archive"),
    "model.npz pickle planted": (_plant_pickle("model.npz"), r"model\.npz: cannot be read as an npz archive"),
    "model.npz extra array": (lambda run: _edit_npz(run / "model.npz", lambda a: a.update(extra=np.ones(2))),
                              r"unknown arrays \['extra'\]"),
    "model.npz Y reshaped": (lambda run: _edit_npz(run / "model.npz", lambda a: a.update(Y=a["Y"][:-1])),
                             r"model\.json: the stored model cannot be rebuilt"),
    "checkpoint.npz missing": (lambda run: (run / "checkpoint.npz").unlink(), r"holds no slamjax run"),
    "checkpoint.npz truncated": (_truncate("checkpoint.npz"), r"checkpoint\.npz: cannot be read as an npz archive"),
    "checkpoint.npz pickle planted": (_plant_pickle("checkpoint.npz"), r"checkpoint\.npz: cannot be read"),
    "checkpoint.npz object array": (
        lambda run: np.savez(run / "checkpoint.npz",
                             progress=np.array([_Payload(run.parent / "marker")], dtype=object)),
        r"checkpoint\.npz: cannot be read as an npz archive of plain arrays"),
    "checkpoint.npz state reshaped": (
        lambda run: _edit_npz(run / "checkpoint.npz", lambda a: a.update({"states.F": a["states.F"][:, :-1]})),
        r"'states\.F' has shape \(2, 29, 2\) and dtype float64; the model needs \(2, 30, 2\) and float64"),
    "checkpoint.npz state retyped": (
        lambda run: _edit_npz(run / "checkpoint.npz",
                              lambda a: a.update({"states.F_h2_index": a["states.F_h2_index"].astype(np.float64)})),
        r"'states\.F_h2_index' has shape \(2, 2\) and dtype float64; the model needs \(2, 2\) and int32"),
    "checkpoint.npz state missing": (
        lambda run: _edit_npz(run / "checkpoint.npz", lambda a: a.pop("states.Lambda_prior.delta")),
        r"the array 'states\.Lambda_prior\.delta' is missing"),
    "checkpoint.npz unknown array": (
        lambda run: _edit_npz(run / "checkpoint.npz", lambda a: a.update({"states.extra": np.ones(2)})),
        r"unknown arrays \['states\.extra'\]"),
    "checkpoint counters inconsistent": (_edit_progress(lambda p: p.update(n_draws=7)), r"do not fit the settings"),
    "checkpoint unknown setting": (_edit_progress(lambda p: p["settings"].update(colour="red")),
                                   r"the settings must have the keys"),
    "checkpoint setting of the wrong type": (_edit_progress(lambda p: p["settings"].update(thin="2")),
                                             r"the settings \['thin'\] have the wrong type"),
    "checkpoint more chains": (_edit_progress(lambda p: p["settings"].update(num_chains=3)),
                               r"has shape \(2, .*; the model needs \(3, "),
    "draws.zarr missing": (lambda run: shutil.rmtree(run / "draws.zarr"), r"draws\.zarr: missing, but the checkpoint"),
    "draws.zarr variable removed": (lambda run: shutil.rmtree(run / "draws.zarr" / "h2"), r"holds the variables"),
    "draws.zarr other codec": (_add_codec("numcodecs.zlib", {"level": 1}),
                               r"'h2' has dtype float64 and codecs \['bytes', 'numcodecs\.zlib', 'zstd'\]"),
    "draws.zarr pickle codec": (_add_codec("numcodecs.pickle", {}), r"draws\.zarr: not a zarr \(format 3\) group"),
    "old layout with pickles": (_old_layout, r"holds a run in the old layout \(model\.pkl, checkpoint\.pkl\)"),
}


@pytest.mark.parametrize("tampering", list(TAMPERINGS))
def test_a_tampered_store_is_refused_naming_the_problem(copy, tampering):
    edit, message = TAMPERINGS[tampering]
    edit(copy)
    with pytest.raises(sj.SlamjaxInputError, match=message) as caught:
        sj.open_run(copy)
    assert str(copy) in str(caught.value) or "model.json" in str(caught.value)
    assert not (copy.parent / "marker").exists(), "a pickle was read"


def test_opening_and_resuming_read_no_pickle(stored, copy, monkeypatch):
    """With every way of unpickling made to fail, a store opens and resumes, and equals a run made
    in one go."""
    def refuse(*args, **kwargs):
        raise AssertionError("a pickle was read")

    real_load = np.load

    def load_without_pickles(*args, allow_pickle=False, **kwargs):
        assert allow_pickle is False, "np.load was asked to allow pickles"
        return real_load(*args, allow_pickle=False, **kwargs)

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(np, "load", load_without_pickles)
    run = sj.open_run(copy).resume(num_samples=10, progress=False)
    monkeypatch.undo()
    assert_same_run(run, sj.sample(tiny_model(n=30, p=4, k=2, fraction_missing=0.1), **dict(SETTINGS, num_samples=30)))


def test_the_package_source_reads_no_pickles():
    unpickling = re.compile(
        r"\bpickle\.(load|loads|Unpickler)\b|allow_pickle\s*=\s*True"
        r"|^\s*(import|from)\s+(c?pickle|dill|cloudpickle|joblib)\b"
        r"|\bpd\.read_pickle\b|\.read_pickle\(",
        re.MULTILINE,
    )
    offenders = [f"{path.relative_to(PACKAGE)}: {match.group(0)}" for path in sorted(PACKAGE.rglob("*.py"))
                 for match in unpickling.finditer(path.read_text())]
    assert offenders == []


def test_a_store_from_another_slamjax_version_opens_with_a_warning(copy):
    _edit_json(copy / "model.json", lambda tree: tree.update(slamjax="0.0.1"))
    with pytest.warns(UserWarning, match=r"written by slamjax '0\.0\.1', this is"):
        run = sj.open_run(copy)
    assert run.draws["h2"].shape == (2, 20, 4)


def test_a_store_from_before_the_factor_swaps_resumes_without_them(copy):
    assert sj.open_run(copy).model.data.swap_factors  # written now: "auto", on with MGPS
    for name in ("swap_factors", "rescale_factors"):  # both added after stores were first written
        _edit_json(copy / "model.json", lambda tree: tree["arguments"].pop(name))
    data = sj.open_run(copy).model.data
    assert not data.swap_factors and not data.rescale_factors
