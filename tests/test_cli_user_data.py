"""The command line on your own files: a YAML configuration naming CSV tables, every command end
to end, and one-line errors (exit status 2) naming the key for bad configurations."""

import json
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import slamjax as sj
from slamjax._config import ConfigError, load_config
from slamjax._user_data import read_inputs
from slamjax.cli import main

REPO = Path(__file__).resolve().parents[1]
SAMPLING = "sampling: {num_warmup: 30, num_samples: 30, thin: 1, num_chains: 2, seed: 0}\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """traits.csv (wide), tall.csv, covariates.csv, K.csv, markers.csv and pedigree.csv of 60
    simulated individuals with 4 traits."""
    folder = tmp_path_factory.mktemp("user_data")
    ds = sj.datasets.simulate(n=60, p=4, k=2, seed=3)
    ids = list(ds.Y.index)
    ds.Y.rename_axis("id").reset_index().to_csv(folder / "traits.csv", index=False)
    tall = ds.Y.rename_axis("id").reset_index().melt(id_vars="id", var_name="trait", value_name="value")
    tall.sample(frac=1.0, random_state=0).to_csv(folder / "tall.csv", index=False)
    rng = np.random.default_rng(0)
    covariates = pd.DataFrame({"id": ids, "site": rng.choice(["north", "south"], len(ids)),
                               "age": rng.normal(size=len(ids))})
    covariates.to_csv(folder / "covariates.csv", index=False)
    ds.relmat["id"].to_csv(folder / "K.csv")
    markers = pd.DataFrame(rng.integers(0, 3, size=(len(ids), 40)), index=pd.Index(ids, name="id"),
                           columns=[f"m{j}" for j in range(40)])
    markers.to_csv(folder / "markers.csv")
    pedigree = pd.DataFrame({"id": ids, "sire": ["0"] * 20 + [ids[i % 10] for i in range(40)],
                             "dam": ["0"] * 20 + [ids[10 + i % 10] for i in range(40)]})
    pedigree.to_csv(folder / "pedigree.csv", index=False)
    return folder


def write_config(folder: Path, text: str, name: str = "fit.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


GOOD = """\
data:
  id: id
  Y: traits.csv
  covariates: covariates.csv
  relmat:
    id: {matrix: K.csv}
model:
  formula: "~ 1 + site + age + (1|id)"
  n_factors: 2
  h2_divisions: 10
""" + SAMPLING + """\
output:
  predict: {levels: [ind0000, ind0001], interval: 0.8}
"""


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.images = set(), 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img" and attrs.get("src", "").startswith("data:image/png;base64,"):
            self.images += 1


def _slamjax(*args, cwd):
    result = subprocess.run([sys.executable, "-m", "slamjax", *map(str, args)], capture_output=True, text=True,
                            timeout=600, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _check_report(path: Path):
    parser = _Tags()
    parser.feed(path.read_text(encoding="utf-8"))
    assert {"h2", "worst", "fitted", "convergence"} <= parser.ids
    assert parser.images >= 3
    return parser


def test_every_command_end_to_end(files, tmp_path):
    """fit, summary --csv, predict, plot, resume --samples and report through `python -m slamjax`."""
    import matplotlib.image

    config = write_config(files, GOOD)
    out = tmp_path / "run"
    stdout = _slamjax("fit", config, "--out", out, cwd=tmp_path)
    assert "Heritability h2" in stdout and f"Report: {out / 'report.html'}" in stdout
    for name in ("checkpoint.npz", "summary.csv", "report.html", "predictions.csv", "fit.json"):
        assert (out / name).is_file(), name
    summary = pd.read_csv(out / "summary.csv", index_col=0)
    assert {"mean", "r_hat", "ess_bulk"} <= set(summary.columns) and "h2[trait000]" in summary.index
    for png in ("h2.png", "genetic_correlations.png", "loadings.png", "trace.png"):
        assert matplotlib.image.imread(out / "plots" / png).ndim == 3
    predicted = pd.read_csv(out / "predictions.csv")
    assert list(predicted.columns) == ["level", "trait", "mean", "lower", "upper"]
    assert set(predicted["level"]) == {"ind0000", "ind0001"} and len(predicted) == 8
    assert "predictions" in _check_report(out / "report.html").ids
    assert json.loads((out / "fit.json").read_text())["config"]["model"]["n_factors"] == 2

    _slamjax("summary", out, "--csv", tmp_path / "s.csv", cwd=tmp_path)
    assert pd.read_csv(tmp_path / "s.csv", index_col=0).shape == summary.shape

    (tmp_path / "levels.txt").write_text("ind0005\nind0007\n")
    _slamjax("predict", out, "--levels", tmp_path / "levels.txt", "--interval", 0.5, "--out", tmp_path / "p.csv",
             cwd=tmp_path)
    p = pd.read_csv(tmp_path / "p.csv")
    assert set(p["level"]) == {"ind0005", "ind0007"} and (p["lower"] <= p["upper"]).all()

    stdout = _slamjax("plot", out, "--kind", "h2", "--kind", "fitted", "--to", tmp_path / "plots", cwd=tmp_path)
    assert "h2:" in stdout
    assert matplotlib.image.imread(tmp_path / "plots" / "predicted_vs_observed.png").ndim == 3

    _slamjax("resume", out, "--samples", 10, cwd=tmp_path)
    assert sj.open_run(out).draws["h2"].shape == (2, 40, 4)
    (out / "report.html").unlink()
    _slamjax("report", out, cwd=tmp_path)
    _check_report(out / "report.html")


def test_tall_traits_and_markers_fit_in_process(files, tmp_path, capsys):
    """Tall Y, no covariates, a GRM from a marker table; the run's G is over the markers' GRM."""
    config = write_config(files, """\
        data:
          Y: {file: tall.csv, format: tall, trait: trait, value: value, traits: [trait000, trait001, trait002]}
          relmat:
            id: {markers: markers.csv, coding: "012"}
        model: {n_factors: 2, h2_divisions: 5}
        sampling: {num_warmup: 20, num_samples: 20, thin: 1, num_chains: 2, seed: 1}
        output: {plots: false}
        """, "tall.yaml")
    cfg = load_config(config)
    inputs = read_inputs(cfg)
    assert inputs.Y.shape == (60, 3) and inputs.formula == "~ 1 + (1|id)"
    markers = pd.read_csv(files / "markers.csv", index_col=0)
    markers.index = markers.index.astype(str)
    pd.testing.assert_frame_equal(inputs.relmat["id"], sj.grm(markers), check_names=False)
    assert main(["fit", str(config), "--out", str(tmp_path / "run")]) == 0
    assert "Report:" in capsys.readouterr().out
    assert sj.open_run(tmp_path / "run").draws["h2"].shape == (2, 20, 3)
    assert (tmp_path / "run" / "report.html").is_file() and not (tmp_path / "run" / "plots").exists()


def test_parquet_and_tsv_files_read_as_csv(files, tmp_path):
    """Y and the covariates as Parquet (ids kept as text), K as TSV: the same inputs as the CSV files."""
    csv = load_config(write_config(files, GOOD))
    pd.read_csv(files / "traits.csv", dtype={"id": str}).to_parquet(tmp_path / "traits.parquet")
    pd.read_csv(files / "covariates.csv", dtype={"id": str}).to_parquet(tmp_path / "covariates.parquet")
    pd.read_csv(files / "K.csv", index_col=0).to_csv(tmp_path / "K.tsv", sep="\t")
    other = load_config(write_config(tmp_path, GOOD.replace("traits.csv", "traits.parquet").replace(
        "covariates.csv", "covariates.parquet").replace("K.csv", "K.tsv")))
    a, b = read_inputs(csv), read_inputs(other)
    pd.testing.assert_frame_equal(a.Y, b.Y)
    pd.testing.assert_frame_equal(a.data, b.data)
    pd.testing.assert_frame_equal(a.relmat["id"], b.relmat["id"])
    assert "traits.parquet (wide): 60 individuals x 4 traits" in b.described["data.Y"]


def test_pedigree_relationship_from_a_table(files):
    config = write_config(files, GOOD.replace("{matrix: K.csv}", "{pedigree: pedigree.csv}"), "ped.yaml")
    inputs = read_inputs(load_config(config))
    A = sj.pedigree_relationship(pd.read_csv(files / "pedigree.csv", dtype=str))
    np.testing.assert_allclose(inputs.relmat["id"].loc[A.index, A.index].to_numpy(), A.to_numpy())


def test_priors_section(files):
    from slamjax._user_data import build_priors

    config = write_config(files, GOOD + textwrap.dedent("""\
        priors:
          Lambda: {prior: tpb, a: 0.4, delta_1_rate: 2}
          h2: {beta: [2, 2]}
          tot_Eta_var: {V: 0.3, nu: 4}
        """), "priors.yaml")
    priors = build_priors(load_config(config), n_random=1)
    assert isinstance(priors.Lambda, sj.priors.TPB) and priors.Lambda.a == 0.4 and priors.Lambda.delta_1_rate == 2
    assert priors.tot_Eta_var.V == 0.3 and len(priors.h2) == 1


def _bad_traits(folder):
    Y = pd.read_csv(folder / "traits.csv")
    Y["trait001"] = Y["trait001"].astype(object)
    Y.loc[3, "trait001"] = "high"
    Y.to_csv(folder / "bad_traits.csv", index=False)


def _bad_K(folder):
    K = pd.read_csv(folder / "K.csv", index_col=0)
    labels = [f"x{i}" for i in range(len(K))]
    K.index, K.columns = labels, labels
    K.to_csv(folder / "bad_K.csv")


BAD = [
    # (name, edit of GOOD, files to write, the key named, words of the message)
    ("unknown key", lambda t: t.replace("  id: id\n", "  id: id\n  colour: blue\n"), None, "'colour'", "in 'data'"),
    ("wrong type", lambda t: t.replace("num_chains: 2", "num_chains: four"), None, "'sampling.num_chains'",
     "must be an integer >= 1, got 'four'"),
    ("missing file", lambda t: t.replace("covariates: covariates.csv", "covariates: nope.csv"), None,
     "'data.covariates.file'", "file not found"),
    ("missing id column", lambda t: t.replace("id: id", "id: line"), None, "'data.id'", "column 'line' not found"),
    ("trait not numeric", lambda t: t.replace("Y: traits.csv", "Y: bad_traits.csv"), _bad_traits, "'data.Y.traits'",
     "'trait001' is not numeric (e.g. 'high')"),
    ("formula column", lambda t: t.replace("site + age", "site + weight"), None, "'model.formula'", "'weight'"),
    ("relmat labels", lambda t: t.replace("K.csv", "bad_K.csv"), _bad_K, "'data.relmat.id'",
     "are not labels of the relationship matrix"),
    ("negative num_samples", lambda t: t.replace("num_samples: 30", "num_samples: -5"), None,
     "'sampling.num_samples'", "must be >= 1, got -5"),
    ("unknown observation", lambda t: t + "observation: poisson\n", None, "'observation'", "gaussian, voom"),
    ("tall missing column", lambda t: t.replace("Y: traits.csv", "Y: {file: tall.csv, format: tall, value: yield}"),
     None, "'data.Y.value'", "column 'yield' not found"),
    ("relmat kind", lambda t: t.replace("{matrix: K.csv}", "{coding: '01'}"), None, "'data.relmat.id'",
     "exactly one of matrix, markers or pedigree"),
    ("relmat group", lambda t: t.replace("    id: {matrix", "    line: {matrix"), None, "'data.relmat.line'",
     "not the id nor a column"),
    ("not a table", lambda t: t.replace("Y: traits.csv", "Y: traits.xlsx"), None, "'data.Y.file'", ".parquet"),
    ("lambda prior", lambda t: t + "priors: {Lambda: {prior: laplace}}\n", None, "'priors.Lambda.prior'",
     "mgps, horseshoe, tpb"),
    ("interval", lambda t: t.replace("interval: 0.8", "interval: 1.5"), None, "'output.predict.interval'",
     "< 1"),
    ("too many factors", lambda t: t.replace("n_factors: 2", "n_factors: 9"), None, "'model.n_factors'",
     "at most the number of traits (4)"),
]


@pytest.mark.parametrize(("name", "edit", "prepare", "key", "words"), BAD, ids=[case[0] for case in BAD])
def test_bad_config_exit_2_naming_the_key(files, tmp_path, capsys, name, edit, prepare, key, words):
    if prepare is not None:
        prepare(files)
    config = write_config(files, edit(GOOD), f"bad_{name.replace(' ', '_')}.yaml")
    status = main(["fit", str(config), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith("slamjax: error:") and err.count("\n") == 1, err
    assert key in err and words in err, err
    assert not (tmp_path / "run").exists()  # nothing written


def test_fit_refuses_a_folder_holding_a_run(files, tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.npz").write_bytes(b"")
    assert main(["fit", str(write_config(files, GOOD)), "--out", str(tmp_path / "run")]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_commands_on_a_folder_without_a_run_exit_2(tmp_path, capsys):
    for argv in (["summary", str(tmp_path)], ["report", str(tmp_path)], ["plot", str(tmp_path)],
                 ["predict", str(tmp_path), "--out", str(tmp_path / "p.csv")], ["resume", str(tmp_path)]):
        assert main(argv) == 2, argv
        assert "holds no slamjax run" in capsys.readouterr().err


def test_run_failure_exits_1_on_one_line(files, tmp_path, capsys, monkeypatch):
    import slamjax.cli as cli

    def failing(*args, **kwargs):
        raise sj.NumericalError("Lambda block produced NaN at sweep 3 of chain 0")

    monkeypatch.setattr(cli, "fit", failing)
    assert main(["fit", str(write_config(files, GOOD)), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("slamjax: run failed: NumericalError: Lambda block") and err.count("\n") == 1


@pytest.mark.parametrize("command", ["fit", "resume", "summary", "predict", "plot", "report", "datasets"])
def test_help_of_every_command(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: slamjax " + command)
    if command == "fit":
        assert "data.relmat.GROUP.markers" in text and "--devices N|all" in text


def test_datasets_lists_sizes_and_citations(capsys):
    assert main(["datasets"]) == 0
    text = capsys.readouterr().out
    assert "wheat: 599 individuals x 4 traits" in text and "Crossa" in text and "Valdar" in text


def test_config_keys_are_documented():
    from slamjax._config import SCHEMA_DOC

    for key in ("data.Y.format", "data.covariates.file", "data.relmat.GROUP.pedigree", "model.formula",
                "priors.Lambda", "sampling.num_chains", "output.predict.interval", "observation"):
        assert key in SCHEMA_DOC


def test_shipped_wheat_config_still_loads():
    assert load_config(REPO / "configs" / "wheat.yaml")["data"] == "wheat"


def test_voom_observation_reads_counts(tmp_path):
    """observation: voom turns a count table into sj.obs.Voom with the formula's fixed effects as design."""
    from slamjax._user_data import build_model

    rng = np.random.default_rng(1)
    ids = [f"s{i}" for i in range(24)]
    counts = pd.DataFrame(rng.poisson(rng.gamma(2.0, 50.0, size=6), size=(24, 6)), index=pd.Index(ids, name="id"),
                          columns=[f"g{j}" for j in range(6)])
    counts.to_csv(tmp_path / "counts.csv")
    pd.DataFrame({"id": ids, "strain": ["A", "B"] * 12, "batch": ["b1", "b2", "b3"] * 8}).to_csv(
        tmp_path / "cov.csv", index=False)
    config = write_config(tmp_path, """\
        data: {Y: counts.csv, covariates: cov.csv}
        observation: voom
        model: {formula: "~ strain + (1|batch)", n_factors: 2, h2_divisions: 5}
        sampling: {num_warmup: 10, num_samples: 10, thin: 1, num_chains: 2, seed: 0}
        """)
    cfg = load_config(config)
    model = build_model(read_inputs(cfg), cfg)
    assert isinstance(model.observation, sj.obs.Voom) and model.shapes["p"] == 6 and model.shapes["b"] == 2
