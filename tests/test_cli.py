"""The command-line interface: configuration checks and report formatting (no sampling)."""

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from slamjax._errors import SlamjaxInputError
from slamjax.cli import (
    KNOWN_DATASETS,
    ConfigError,
    format_report,
    genetic_correlation,
    load_config,
    main,
    validate_config,
)

REPO = Path(__file__).resolve().parents[1]

GOOD = """\
data: wheat
model:
  n_factors: 4
  h2_divisions: 20
sampling:
  num_warmup: 10
  num_samples: 20
  thin: 2
  num_chains: 2
  seed: 0
"""


def write(tmp_path, text, name="config.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_good_config(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg == {
        "data": "wheat",
        "model": {"n_factors": 4, "h2_divisions": 20},
        "sampling": {"num_warmup": 10, "num_samples": 20, "thin": 2, "num_chains": 2, "seed": 0},
    }


def test_shipped_wheat_config_is_valid():
    cfg = load_config(REPO / "configs" / "wheat.yaml")
    assert cfg["data"] == "wheat"
    assert cfg["model"] == {"n_factors": 2, "h2_divisions": 20}
    assert cfg["sampling"] == {
        "num_warmup": 3000,
        "num_samples": 1000,
        "thin": 5,
        "num_chains": 4,
        "seed": 0,
    }


def test_config_error_is_input_error():
    assert issubclass(ConfigError, SlamjaxInputError)
    assert issubclass(ConfigError, ValueError)
    assert "wheat" in KNOWN_DATASETS


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("data: wheat", "data: maize"), "unknown data set 'maize'"),
        (lambda t: t.replace("data: wheat", "data: 3"), "'data' must be the name"),
        (lambda t: t.replace("data: wheat\n", ""), "missing key(s) 'data'"),
        (lambda t: t.replace("  n_factors: 4\n", ""), "model.n_factors"),
        (lambda t: t.replace("  seed: 0\n", ""), "sampling.seed"),
        (lambda t: t.replace("  thin: 2\n", "").replace("  seed: 0\n", ""), "sampling.thin, sampling.seed"),
        (lambda t: t.split("sampling:")[0], "missing key(s) 'sampling'"),
        (lambda t: t + "extra: 1\n", "unknown key(s) 'extra'"),
        (lambda t: t.replace("  seed: 0", "  seed: 0\n  n_iter: 5"), "unknown key(s) 'n_iter' in 'sampling'"),
        (lambda t: t.replace("n_factors: 4", "n_factors: four"), "'model.n_factors' must be an integer"),
        (lambda t: t.replace("n_factors: 4", "n_factors: 4.5"), "'model.n_factors' must be an integer"),
        (lambda t: t.replace("n_factors: 4", "n_factors: true"), "'model.n_factors' must be an integer"),
        (lambda t: t.replace("n_factors: 4", "n_factors: 0"), "'model.n_factors' must be >= 1"),
        (lambda t: t.replace("num_samples: 20", "num_samples: 0"), "'sampling.num_samples' must be >= 1"),
        (lambda t: t.replace("num_warmup: 10", "num_warmup: -1"), "'sampling.num_warmup' must be >= 0"),
        (lambda t: t.replace("thin: 2", "thin: 0"), "'sampling.thin' must be >= 1"),
        (lambda t: t.replace("num_chains: 2", "num_chains: 0"), "'sampling.num_chains' must be >= 1"),
        (
            lambda t: t.replace("model:\n  n_factors: 4\n  h2_divisions: 20\n", "model: 3\n"),
            "'model' must be a mapping",
        ),
        (lambda t: "- 1\n- 2\n", "top level must be a mapping"),
        (lambda t: "", "the file is empty"),
        (lambda t: "data: [wheat\n", "not valid YAML"),
    ],
)
def test_bad_config(tmp_path, edit, message):
    path = write(tmp_path, edit(GOOD))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_validate_config_accepts_dict():
    import yaml

    cfg = validate_config(yaml.safe_load(GOOD))
    assert cfg["sampling"]["thin"] == 2


@pytest.mark.parametrize(
    "text",
    [GOOD.replace("data: wheat", "data: maize"), GOOD.replace("  seed: 0\n", "")],
)
def test_main_exit_code_2_on_bad_config(tmp_path, capsys, text):
    status = main(["fit", str(write(tmp_path, text))])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("slamjax: error:")


def test_main_exit_code_2_on_missing_file(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "absent.yaml")]) == 2
    assert "not found" in capsys.readouterr().err


def test_main_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["frobnicate", "x.yaml"])
    assert info.value.code == 2


def test_genetic_correlation():
    G = pd.DataFrame([[4.0, 2.0], [2.0, 9.0]], index=["a", "b"], columns=["a", "b"])
    R = genetic_correlation(G)
    assert list(R.index) == ["a", "b"] and list(R.columns) == ["a", "b"]
    np.testing.assert_allclose(R.to_numpy(), [[1.0, 1.0 / 3.0], [1.0 / 3.0, 1.0]])


class FakeRun:
    """Stands in for the core's run object: only what the report reads."""

    def __init__(self, traits):
        rng = np.random.default_rng(0)
        draws = rng.uniform(0.2, 0.8, size=(2, 50, len(traits)))
        self.posterior = {
            "h2": xr.DataArray(
                draws, dims=("chain", "draw", "trait"), coords={"trait": list(traits)}
            )
        }
        self._h2 = pd.Series(draws.mean(axis=(0, 1)), index=list(traits))
        L = rng.normal(size=(len(traits), len(traits)))
        self._G = pd.DataFrame(L @ L.T + np.eye(len(traits)), index=traits, columns=traits)

    def posterior_mean(self, name):
        return {"h2": self._h2, "G": self._G}[name]

    def summary(self):
        return pd.DataFrame(
            {"mean": [0.1, 0.2, 0.3], "r_hat": [1.001, 1.02, np.nan]}, index=["a", "b", "c"]
        )


class FakeDataset:
    name = "wheat"
    Y = pd.DataFrame(np.zeros((5, 3)), columns=["env1", "env2", "env4"])
    citation = "Crossa et al. (2010)\n  Genetics 186:713."


def test_format_report():
    traits = ["env1", "env2", "env4"]
    run = FakeRun(traits)
    cfg = validate_config(__import__("yaml").safe_load(GOOD))
    text = format_report(FakeDataset(), cfg, run, elapsed=12.34)
    lines = text.splitlines()
    assert lines[0] == (
        "Data set: wheat (5 individuals x 3 traits). Cite: Crossa et al. (2010) Genetics 186:713."
    )
    assert lines[1] == "Model: n_factors=4, h2_divisions=20"
    assert lines[2] == "Sampling: num_warmup=10, num_samples=20, thin=2, num_chains=2, seed=0"
    assert "Elapsed: 12.3 s" in lines
    q = run.posterior["h2"].quantile([0.05, 0.95], dim=("chain", "draw"))
    env2 = next(line for line in lines if line.strip().startswith("env2 "))
    lo, hi = float(q.sel(quantile=0.05, trait="env2")), float(q.sel(quantile=0.95, trait="env2"))
    assert f"{run.posterior_mean('h2')['env2']:.3f}  [{lo:.3f}, {hi:.3f}]" in env2
    assert "Max r_hat: 1.020 (over 2 parameters)" in lines
    # correlation matrix has 1.00 on the diagonal
    corr_rows = [line for line in lines if line.strip().startswith(("env1 ", "env2 ", "env4 "))]
    assert any("1.00" in line for line in corr_rows)


def test_fit_end_to_end(tmp_path):
    """A short fit through the command line prints h2, genetic correlations and r_hat."""
    import subprocess
    import sys

    config = tmp_path / "short.yaml"
    config.write_text(
        "data: wheat\nmodel:\n  n_factors: 2\n  h2_divisions: 10\n"
        "sampling:\n  num_warmup: 20\n  num_samples: 20\n  thin: 1\n  num_chains: 2\n  seed: 0\n"
    )
    store = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "slamjax.cli", "fit", str(config), "--store", str(store)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "Crossa" in result.stdout
    assert "env1" in result.stdout and "Genetic correlations" in result.stdout
    assert "Max r_hat" in result.stdout

    from slamjax.cli import main

    assert main(["resume", str(store), "--samples", "10"]) == 0
    assert main(["summary", str(store)]) == 0
    import slamjax as sj

    assert sj.open_run(store).draws["h2"].shape == (2, 30, 4)
    assert main(["resume", str(store)]) == 2  # complete: nothing to finish without --samples


@pytest.mark.parametrize("flags, message", [
    (["--coordinator", "localhost:1234"], "--coordinator, --num-processes and --process-id go together"),
    (["--distributed", "--coordinator", "h:1", "--num-processes", "2", "--process-id", "0"], "drop it or"),
    (["--devices", "two"], "--devices: a count or 'all'"),
    (["--devices", "99"], "devices: asked for 99"),
])
def test_device_flags_exit_2_naming_the_flag(tmp_path, capsys, flags, message):
    """Bad device or process flags stop before anything starts (jax.distributed included)."""
    assert main(["fit", str(write(tmp_path, GOOD)), *flags]) == 2
    assert message in capsys.readouterr().err


def test_python_dash_m_runs_the_command_line():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "slamjax", "fit", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "--coordinator HOST:PORT" in result.stdout and "--devices N|all" in result.stdout
