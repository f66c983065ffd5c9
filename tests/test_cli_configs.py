"""The shipped configurations (configs/*.yaml), bundled and simulated data in a configuration,
voom's filters, the sampling dtype, and the printed summary of many traits."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import slamjax as sj
from slamjax._config import DEFAULT_FORMULAS, KNOWN_DATASETS, SCHEMA_DOC, ConfigError, load_config
from slamjax._user_data import build_model, dataset_inputs, read_inputs
from slamjax.cli import PRINTED_TRAITS, format_results, main

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
SAMPLING = "sampling: {num_warmup: 10, num_samples: 10, thin: 1, num_chains: 2, seed: 0}\n"

# what each shipped configuration fits: traits, fixed effects, random effects, observation model
EXPECTED = {
    "wheat": dict(p=4, b=1, effects=["line"], observation="Gaussian"),
    "mice": dict(p=20, b=1 + 1 + 3 + 7, effects=["mouse", "cage"], observation="Gaussian"),
    "grav2": dict(p=241, b=1, effects=["id"], observation="Gaussian"),
    "bottomly": dict(p=2000, b=2, effects=["experiment.number"], observation="Voom"),
    "simulated": dict(p=100, b=1, effects=["id"], observation="Gaussian"),
}


def write(folder: Path, text: str, name: str = "fit.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_config_for_every_bundled_data_set_and_a_simulated_one():
    assert {path.stem for path in CONFIGS} == set(KNOWN_DATASETS) | {"simulated"} == set(EXPECTED)
    assert set(DEFAULT_FORMULAS) == set(KNOWN_DATASETS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_config_builds_its_model(path):
    """Every shipped configuration loads and builds the model it says (no sampling)."""
    config = load_config(path)
    inputs, ds = dataset_inputs(config)
    model = build_model(inputs, config)
    expected = EXPECTED[path.stem]
    assert model.shapes["p"] == expected["p"] and model.shapes["b"] == expected["b"]
    assert list(model.effect_names) == expected["effects"]
    assert type(model.observation).__name__ == expected["observation"]
    assert model.shapes["n"] == ds.Y.shape[0]


def test_bottomly_voom_filters_as_edger_then_keeps_the_most_expressed():
    """observation.voom: cpm > 1 in >= 3 libraries keeps 10,228 genes (the count in the example);
    the 2,000 of largest mean log-cpm are kept, with the weights voom gave them among all 10,228."""
    config = load_config(REPO / "configs" / "bottomly.yaml")
    inputs, ds = dataset_inputs(config)
    model = build_model(inputs, config)
    assert "10228 with cpm > 1 in >= 3 individuals" in inputs.described["observation"]
    filtered = sj.obs.filter_expressed(ds.Y, min_cpm=1.0, min_samples=3)
    design = pd.get_dummies(ds.data["strain"], drop_first=True, dtype=float).assign(intercept=1.0)
    full = sj.obs.Voom(filtered, design=design[["intercept", "DBA/2J"]])
    kept = model.trait_names
    assert list(kept) == list(full.logcpm.mean(axis=0).nlargest(2000).index)
    np.testing.assert_allclose(model.observation.weights.to_numpy(), full.weights[kept].to_numpy(), rtol=1e-12)


BAD = [
    ("voom on measurements", "data: wheat\nobservation: voom\n", "'observation'", "only bottomly holds counts"),
    ("counts without voom", "data: bottomly\n", "'observation'", "observation: voom"),
    ("voom on simulated data", "data: {simulate: {n: 20}}\nobservation: voom\n", "'observation'", "Gaussian"),
    ("simulate beside files", "data: {simulate: {n: 20}, Y: y.csv}\n", "'data.simulate'", "stands alone"),
    ("simulate key", "data: {simulate: {n: 20, traits: 4}}\n", "'traits'", "data.simulate"),
    ("simulate size", "data: {simulate: {n: 1}}\n", "'data.simulate.n'", ">= 2"),
    ("voom key", "data: bottomly\nobservation: {voom: {min_cpm: 1, top: 5}}\n", "'top'", "observation.voom"),
    ("voom shape", "data: bottomly\nobservation: {voom: 3}\n", "'observation.voom'", "mapping"),
]


@pytest.mark.parametrize(("name", "top", "key", "words"), BAD, ids=[case[0] for case in BAD])
def test_bad_bundled_or_simulated_config(tmp_path, name, top, key, words):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, top + "model: {n_factors: 2, h2_divisions: 5}\n" + SAMPLING))
    assert key in str(info.value) and words in str(info.value)


def test_bad_sampling_dtype(tmp_path):
    with pytest.raises(ConfigError, match="'sampling.dtype' must be one of float64, float32, got 'float16'"):
        load_config(write(tmp_path, "data: wheat\nmodel: {n_factors: 2, h2_divisions: 5}\n"
                                    "sampling: {num_warmup: 1, num_samples: 1, thin: 1, num_chains: 1, seed: 0, "
                                    "dtype: float16}\n"))


@pytest.mark.parametrize(("formula", "words"), [("~ 1", "has no random term"),
                                                ("~ 1 + (1|plot)", "'plot'")])
def test_a_bundled_formula_is_checked_on_its_covariates(tmp_path, formula, words):
    config = load_config(write(tmp_path, f"data: wheat\nmodel: {{formula: '{formula}', n_factors: 2, "
                                         f"h2_divisions: 5}}\n" + SAMPLING))
    with pytest.raises(ConfigError, match="'model.formula'") as info:
        dataset_inputs(config)
    assert words in str(info.value)


def test_voom_filter_that_keeps_nothing_is_named(tmp_path):
    config = load_config(write(tmp_path, "data: bottomly\nobservation: {voom: {min_cpm: 1000000000}}\n"
                                         "model: {n_factors: 2, h2_divisions: 5}\n" + SAMPLING))
    with pytest.raises(ConfigError, match="'observation.voom.min_cpm': no gene"):
        build_model(*dataset_inputs(config)[:1], config)


def test_config_keys_are_documented():
    for key in ("data.simulate.n", "data.simulate.n_groups", "observation.voom.min_cpm",
                "observation.voom.most_expressed", "sampling.dtype"):
        assert key in SCHEMA_DOC


def test_simulated_config_fits_in_float32_end_to_end(tmp_path, capsys):
    """`slamjax fit` of simulated data with a second random effect, in float32: the store records
    the dtype, the report names the data, and the printed summary of 14 traits is the short form."""
    config = write(tmp_path, """\
        data:
          simulate: {n: 60, p: 14, k: 2, seed: 3, n_groups: 6, fraction_missing: 0.1}
        model: {n_factors: 3, h2_divisions: 4}
        sampling: {num_warmup: 20, num_samples: 20, thin: 1, num_chains: 2, seed: 0, dtype: float32}
        """)
    out = tmp_path / "out"
    assert main(["fit", str(config), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Data set: simulated (60 individuals x 14 traits)" in printed
    assert "formula=~ 1 + (1|id) + (1|group)" in printed
    assert "Heritability h2 of 14 traits (posterior means): min" in printed
    assert f"the {PRINTED_TRAITS} strongest:" in printed
    run = sj.open_run(out)
    assert run.settings["dtype"] == "float32" and list(run.model.effect_names) == ["id", "group"]
    report = (out / "report.html").read_text()
    assert "simulated" in report and "Simulated from the SLAMglmm model" in report


class _FewDrawsRun:
    """Just what format_results reads, for p traits."""

    def __init__(self, p: int):
        import xarray as xr

        rng = np.random.default_rng(0)
        self.traits = [f"t{j:02d}" for j in range(p)]
        draws = rng.uniform(0.1, 0.9, size=(2, 30, p))
        self.posterior = {"h2": xr.DataArray(draws, dims=("chain", "draw", "trait"),
                                             coords={"trait": self.traits})}
        A = rng.normal(size=(p, p))
        G = A @ A.T + p * np.eye(p)
        G[0, 1] = G[1, 0] = 0.99 * np.sqrt(G[0, 0] * G[1, 1])  # the strongest pair
        self.G = pd.DataFrame(G, index=self.traits, columns=self.traits)
        self.h2 = pd.Series(draws.mean(axis=(0, 1)), index=self.traits)

    def posterior_mean(self, name):
        return {"h2": self.h2, "G": self.G}[name]

    def summary(self):
        return pd.DataFrame({"r_hat": [1.01, 1.02]})


@pytest.mark.parametrize("p", [PRINTED_TRAITS, PRINTED_TRAITS + 1, 300])
def test_printed_summary_stays_short_with_many_traits(p):
    text = format_results(_FewDrawsRun(p), elapsed=1.0)
    lines = text.splitlines()
    if p <= PRINTED_TRAITS:
        assert sum(line.startswith("  t") for line in lines) == 2 * p  # every h2 and every matrix row
    else:
        assert len(lines) < 2 * PRINTED_TRAITS + 12
        assert "t00 ~ t01  +0.99" in text
        run = _FewDrawsRun(p)
        top = run.h2.idxmax()
        assert any(line.split()[0] == top for line in lines if line.startswith("  t"))
