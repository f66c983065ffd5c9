"""The command line: ``slamjax COMMAND ...`` (also ``python -m slamjax``).

    slamjax fit CONFIG.yaml [--out DIR]      fit your files (or a bundled data set) as the YAML says;
                                             DIR gets the store, summary.csv, plots/ and report.html
    slamjax resume DIR [--samples N]         finish a run cut short, or add N draws; refreshes the outputs
    slamjax summary DIR [--csv FILE]         h2, genetic correlations and r_hat of a stored run
    slamjax predict DIR --out FILE           genetic values (with --interval P: equal-tailed intervals)
    slamjax plot DIR [--kind KIND]           PNG plots: h2, correlations, loadings, trace, fitted
    slamjax report DIR                       rewrite DIR/report.html (self-contained) from the store
    slamjax datasets                         the bundled data sets, their sizes and citations

The configuration's keys are in ``slamjax._config`` (``slamjax fit --help`` lists them). Exit
status: 0 done; 1 the run failed (e.g. ``sj.NumericalError``), one line on stderr; 2 bad input, a
bad configuration or bad usage: one line ``slamjax: error: ...`` naming the key or flag.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from ._config import KNOWN_DATASETS, SCHEMA_DOC, ConfigError, data_kind, load_config, validate_config
from ._errors import SlamjaxInputError
from ._x64 import float64

__all__ = ["KNOWN_DATASETS", "ConfigError", "build_parser", "format_report", "genetic_correlation", "load_config",
           "main", "validate_config"]

_STORE_ENTRIES = ("model.json", "model.npz", "checkpoint.npz", "run.json", "draws.zarr")
_OUTPUT_ENTRIES = ("fit.json", "summary.csv", "predictions.csv", "report.html", "plots")
#: record every draw of the genetic values when they take at most this many bytes (sampling.record_genetic_values: auto)
GENETIC_VALUES_AUTO_BYTES = 256 * 2**20


# ----------------------------------------------------------------------------- printed summaries


def genetic_correlation(G: pd.DataFrame) -> pd.DataFrame:
    """Correlation matrix ``G / sqrt(outer(diag(G), diag(G)))``, labels kept."""
    g = np.asarray(G, dtype=float)
    d = np.sqrt(np.diag(g))
    corr = g / np.outer(d, d)
    if isinstance(G, pd.DataFrame):
        return pd.DataFrame(corr, index=G.index, columns=G.columns)
    return pd.DataFrame(corr)


def h2_table(run: Any) -> pd.DataFrame:
    """Posterior mean and 90% interval of each trait's h2, one row per trait."""
    mean = run.posterior_mean("h2")
    if isinstance(mean, pd.DataFrame):  # several random effects: the first one's share
        mean = mean.iloc[:, 0]
    if not isinstance(mean, pd.Series):
        mean = pd.Series(np.asarray(mean))
    da = run.posterior["h2"]
    extra = [d for d in da.dims if d not in ("chain", "draw", "trait")]
    if extra:
        da = da.isel({d: 0 for d in extra})
    q = da.quantile([0.05, 0.95], dim=("chain", "draw"))
    lo = q.sel(quantile=0.05)
    hi = q.sel(quantile=0.95)
    if "trait" in lo.dims and "trait" in lo.coords:
        labels = [str(t) for t in lo.coords["trait"].values]
        lo_s = pd.Series(np.asarray(lo), index=labels)
        hi_s = pd.Series(np.asarray(hi), index=labels)
        idx = [str(t) for t in mean.index]
        if set(idx) == set(labels):
            lo_s, hi_s = lo_s.loc[idx], hi_s.loc[idx]
        lo_v, hi_v = lo_s.to_numpy(), hi_s.to_numpy()
    else:
        lo_v, hi_v = np.asarray(lo).ravel(), np.asarray(hi).ravel()
    return pd.DataFrame(
        {"mean": mean.to_numpy(dtype=float), "q05": lo_v, "q95": hi_v}, index=mean.index
    )


def format_header(ds: Any, config: dict) -> str:
    """Data set (with its citation, on one line), model and sampling settings."""
    m, s = config["model"], config["sampling"]
    n, p = ds.Y.shape
    citation = " ".join(str(ds.citation).split())
    return "\n".join(
        [
            f"Data set: {ds.name} ({n} individuals x {p} traits). Cite: {citation}",
            "Model: " + ", ".join(f"{k}={v}" for k, v in m.items()),
            "Sampling: " + ", ".join(f"{k}={v}" for k, v in s.items()),
        ]
    )


def _format_user_header(inputs: Any, config: dict) -> str:
    m = {**config["model"], "formula": inputs.formula}
    lines = [f"{key}: {text}" for key, text in inputs.described.items()]
    lines += ["Model: " + ", ".join(f"{k}={v}" for k, v in m.items()),
              "Sampling: " + ", ".join(f"{k}={v}" for k, v in config["sampling"].items())]
    return "\n".join(lines)


#: the printed summary lists every trait (and the whole genetic correlation matrix) up to this many traits
PRINTED_TRAITS = 12


def format_results(run: Any, elapsed: float) -> str:
    """Elapsed time, h2 per trait, genetic correlations and the largest r_hat.

    Up to ``PRINTED_TRAITS`` traits every h2 and the whole correlation matrix are printed; with
    more, the spread of h2 over traits with the highest and lowest few, and the strongest genetic
    correlations (``summary.csv`` and ``report.html`` hold everything).
    """
    lines = [f"Elapsed: {elapsed:.1f} s", ""]
    h2 = h2_table(run)
    G = run.posterior_mean("G")
    if isinstance(G, dict):
        G = next(iter(G.values()))
    corr = genetic_correlation(G)
    if len(h2) <= PRINTED_TRAITS:
        lines.append("Heritability h2 per trait (posterior mean [90% interval]):")
        rows = list(h2.iterrows())
    else:
        shown = PRINTED_TRAITS // 2
        order = h2["mean"].sort_values(ascending=False).index
        q = np.quantile(h2["mean"].to_numpy(), [0.0, 0.25, 0.5, 0.75, 1.0])
        lines.append(f"Heritability h2 of {len(h2)} traits (posterior means): min {q[0]:.3f}, quartiles {q[1]:.3f} "
                     f"{q[2]:.3f} {q[3]:.3f}, max {q[4]:.3f}; the {shown} highest and lowest [90% interval]:")
        rows = [(t, h2.loc[t]) for t in [*order[:shown], *order[-shown:]]]
    width = max(len(str(t)) for t, _ in rows)
    for trait, row in rows:
        lines.append(f"  {str(trait):<{width}}  {row['mean']:.3f}  [{row['q05']:.3f}, {row['q95']:.3f}]")
    lines.append("")
    if len(corr) <= PRINTED_TRAITS:
        lines.append("Genetic correlations (from the posterior mean of G):")
        table = corr.round(2).to_string(float_format=lambda x: f"{x:.2f}")
        lines += ["  " + line for line in table.splitlines()]
    else:
        from .report import strongest_pairs

        upper = np.abs(corr.to_numpy()[np.triu_indices(len(corr), 1)])
        pairs = strongest_pairs(corr, PRINTED_TRAITS)
        lines.append(f"Genetic correlations (from the posterior mean of G): {upper.size} pairs, "
                     f"{float(np.mean(upper > 0.5)):.1%} with |r| > 0.5; the {len(pairs)} strongest:")
        for trait, row in pairs.iterrows():
            lines.append(f"  {trait} ~ {row['with']}  {row['correlation']:+.2f}")
    lines.append("")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = run.summary()
    r_hat = None
    if "r_hat" in getattr(summary, "columns", ()):
        r_hat = pd.to_numeric(summary["r_hat"], errors="coerce")
    if r_hat is not None and r_hat.notna().any():
        lines.append(f"Max r_hat: {r_hat.max():.3f} (over {int(r_hat.notna().sum())} parameters)")
    else:
        lines.append("Max r_hat: not available")
    return "\n".join(lines)


def format_report(ds: Any, config: dict, run: Any, elapsed: float) -> str:
    """Everything that ``slamjax fit`` prints for a bundled data set."""
    return format_header(ds, config) + "\n" + format_results(run, elapsed)


# ----------------------------------------------------------------------------- commands


def _output_folder(config: dict, config_path: str, out: str | None) -> Path:
    if out is not None:
        return Path(out)
    if config.get("output", {}).get("dir"):
        return Path(config["output"]["dir"])
    return Path("runs") / Path(config_path).stem


def _check_output_folder(folder: Path, overwrite: bool) -> None:
    """Refuse a folder that already holds a run, unless ``overwrite`` (checked before anything is read)."""
    if folder.exists() and not folder.is_dir():
        raise SlamjaxInputError(f"--out / output.dir: {folder} is a file, not a folder")
    if (folder / "checkpoint.npz").exists() and not overwrite:
        raise SlamjaxInputError(f"--out / output.dir: {folder} already holds a run; `slamjax resume {folder}` "
                                f"continues it, --overwrite replaces it, or choose another folder")


def _clear_output_folder(folder: Path) -> None:
    """Remove a previous run and its outputs from ``folder`` (only the entries slamjax writes)."""
    for name in _STORE_ENTRIES + _OUTPUT_ENTRIES:
        path = folder / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _record_genetic_values(setting, model, sampling: dict) -> bool:
    if setting in (True, False):
        return setting
    shapes = model.shapes
    size = 8 * shapes["r"] * shapes["p"] * sampling["num_chains"] * sampling["num_samples"]
    return size <= GENETIC_VALUES_AUTO_BYTES


@float64
def fit(config: dict, out: TextIO | None = None, store: str | Path | None = None, devices=None, *,
        overwrite: bool = False) -> Any:
    """Read the data, build the model, sample into ``store`` and write the outputs beside it.

    ``config``: as ``load_config`` returns it (a bundled data set or your own files). Prints the
    settings, then h2, genetic correlations and the largest r_hat, and where the report is.
    Returns the ``Run``.
    """
    import slamjax as sj

    from ._sharding import is_writer
    from ._user_data import build_model, dataset_inputs, read_inputs
    from .report import write_outputs

    out = sys.stdout if out is None else out
    m, s = config["model"], config["sampling"]
    if data_kind(config) == "files":
        inputs = read_inputs(config)
        header = _format_user_header(inputs, config)
        info = {"title": f"Your data: {Path(config['data']['Y']['file']).name}.", "described": inputs.described}
    else:
        inputs, ds = dataset_inputs(config)
        kind = "Bundled data set" if data_kind(config) == "bundled" else "Data"
        info = {"title": f"{kind} {ds.name}.", "dataset": ds.name, "citation": " ".join(str(ds.citation).split()),
                "described": inputs.described}
    model = build_model(inputs, config)
    if data_kind(config) != "files":
        first, *rest = format_header(ds, {"model": {**m, "formula": inputs.formula}, "sampling": {
            k: v for k, v in s.items() if k != "record_genetic_values"}}).splitlines()
        fitted = [f"{key}: {text}" for key, text in inputs.described.items() if key != "data"]
        header = "\n".join([first, *fitted, *rest])
    info["config"] = config
    if is_writer():
        print(header, file=out, flush=True)
    if store is not None and overwrite and is_writer():
        _clear_output_folder(Path(store))
    start = time.perf_counter()
    run = sj.sample(
        model,
        num_warmup=s["num_warmup"],
        num_samples=s["num_samples"],
        thin=s["thin"],
        num_chains=s["num_chains"],
        seed=s["seed"],
        dtype=s.get("dtype", "float64"),
        store=store,
        devices=devices,
        record_genetic_values=_record_genetic_values(s.get("record_genetic_values", "auto"), model, s),
    )
    elapsed = time.perf_counter() - start
    if is_writer():
        print(format_results(run, elapsed), file=out, flush=True)
        if store is not None:
            output = config.get("output", {})
            written = write_outputs(run, store, info, plots=output.get("plots", True), predict=output.get("predict"))
            print(f"Report: {written['report']}", file=out, flush=True)
    return run


def _refresh_outputs(run: Any, folder: Path, out: TextIO) -> None:
    """Rewrite summary.csv, the plots, predictions (as the fit asked) and report.html after a resume."""
    import json

    from .report import INFO_FILE, write_outputs

    info = {}
    if (folder / INFO_FILE).exists():
        try:
            info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
        except ValueError:
            info = {}
    output = (info.get("config") or {}).get("output") or {}
    written = write_outputs(run, folder, info, plots=output.get("plots", True), predict=output.get("predict"))
    print(f"Report: {written['report']}", file=out, flush=True)


@float64
def resume(path: str, samples: int | None, out: TextIO | None = None, devices=None) -> None:
    """Reopen a stored run, continue it, print its summary and refresh the outputs beside it."""
    import slamjax as sj

    from ._sharding import is_writer

    out = sys.stdout if out is None else out
    run = sj.open_run(path, devices=devices)
    run.resume(num_samples=samples)
    if is_writer():
        print(format_results(run, run.elapsed), file=out, flush=True)
        _refresh_outputs(run, Path(path), out)


@float64
def summary(path: str, out: TextIO | None = None, csv: str | None = None) -> None:
    """Print the summary of a stored run as it stands; ``csv``: also write ``run.summary()`` there."""
    import slamjax as sj

    from .report import summary_table

    out = sys.stdout if out is None else out
    run = sj.open_run(path)
    state = "complete" if run.complete else "incomplete: `slamjax resume` finishes it"
    print(f"Run {path}: {run.draws['h2'].shape[1]} draws x {run.settings['num_chains']} chains ({state})", file=out)
    print(format_results(run, run.elapsed), file=out, flush=True)
    if csv is not None:
        table, _ = summary_table(run)
        table.to_csv(csv, index_label="parameter")
        print(f"Summary table: {csv}", file=out, flush=True)


def _read_levels(path: str) -> list[str]:
    """Levels from a file: one per line (text), or the first column of a CSV/TSV with a header."""
    file = Path(path)
    if not file.is_file():
        raise SlamjaxInputError(f"--levels: file not found: {path}")
    if file.suffix.lower() in (".csv", ".tsv"):
        table = pd.read_csv(file, sep="\t" if file.suffix.lower() == ".tsv" else ",", dtype=str)
        levels = table.iloc[:, 0].dropna().tolist()
    else:
        levels = [line.strip() for line in file.read_text(encoding="utf-8").splitlines()]
        levels = [line for line in levels if line and not line.startswith("#")]
    if not levels:
        raise SlamjaxInputError(f"--levels: {path} names no level")
    return levels


@float64
def predict(path: str, dest: str, levels: str | None = None, interval: float | None = None,
            effect: str | None = None, out: TextIO | None = None) -> None:
    """Write the genetic values of a stored run (every level of K, or those in ``levels``) to ``dest``."""
    import slamjax as sj

    from .report import predictions

    out = sys.stdout if out is None else out
    if interval is not None and not 0.0 < interval < 1.0:
        raise SlamjaxInputError(f"--interval: must be a probability in (0, 1), got {interval}")
    run = sj.open_run(path)
    if interval is not None and "U" not in run.draws:
        raise SlamjaxInputError("--interval: the run did not keep the genetic values per draw; fit again with "
                                "sampling.record_genetic_values: true, or leave --interval out for the means")
    if interval is None and "U" in run.draws:
        interval = 0.9
    table = predictions(run, None if levels is None else _read_levels(levels), interval, effect)
    sep = "\t" if Path(dest).suffix.lower() == ".tsv" else ","
    table.to_csv(dest, index=False, sep=sep)
    print(f"Predictions of {table['level'].nunique()} levels x {table['trait'].nunique()} traits: {dest}", file=out)


@float64
def plot(path: str, kinds: list[str], folder: str | None = None, out: TextIO | None = None) -> None:
    """Save the plots ``kinds`` of a stored run as PNG files in ``folder`` (default DIR/plots)."""
    import slamjax as sj

    from .report import PLOT_FOLDER, PLOT_KINDS, write_plots

    out = sys.stdout if out is None else out
    explicit = "all" not in kinds
    kinds = list(PLOT_KINDS) if not explicit else list(dict.fromkeys(kinds))
    run = sj.open_run(path)
    made = write_plots(run, Path(folder) if folder else Path(path) / PLOT_FOLDER, kinds)
    for kind, where in made.items():
        if where.startswith("not available"):
            if explicit:
                raise SlamjaxInputError(f"--kind {kind}: {where}")
            print(f"{kind}: {where}", file=sys.stderr)
        else:
            print(f"{kind}: {where}", file=out)


@float64
def report(path: str, out: TextIO | None = None) -> None:
    """Rewrite DIR/report.html (and its plots) from the store."""
    import slamjax as sj

    from .report import PLOT_FOLDER, summary_table, write_plots, write_report

    out = sys.stdout if out is None else out
    run = sj.open_run(path)
    table, notes = summary_table(run)
    plots = write_plots(run, Path(path) / PLOT_FOLDER, table=table)
    print(f"Report: {write_report(run, path, table=table, notes=notes, plots=plots)}", file=out)


def datasets(out: TextIO | None = None) -> None:
    """List the bundled data sets with their sizes and citations."""
    import slamjax as sj

    out = sys.stdout if out is None else out
    loaders = {"wheat": lambda: sj.datasets.load_wheat(), "mice": lambda: sj.datasets.load_mice(markers=False),
               "grav2": lambda: sj.datasets.load_grav2(), "bottomly": lambda: sj.datasets.load_bottomly()}
    for name, load in loaders.items():
        ds = load()
        n, p = ds.Y.shape
        relmat = ", ".join(f"{g} ({K.shape[0]} x {K.shape[1]})" for g, K in (ds.relmat or {}).items()) or "none"
        markers = f"{ds.markers.shape[1]} markers" if getattr(ds, "markers", None) is not None else "no markers"
        usable = "  (slamjax fit: data: " + name + ")" if name in KNOWN_DATASETS else ""
        print(f"{name}: {n} individuals x {p} traits, {float(ds.Y.isna().to_numpy().mean()):.1%} missing; "
              f"relationship matrices: {relmat}; {markers}{usable}", file=out)
        print(f"  cite: {' '.join(str(ds.citation).split())}", file=out)
    print("Load them in Python with sj.datasets.load_<name>(); a configuration can name your own files "
          "(slamjax fit --help).", file=out)


# ----------------------------------------------------------------------------- argument parsing


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of every command."""
    parser = argparse.ArgumentParser(
        prog="slamjax", description="Bayesian sparse-factor multi-trait mixed models in JAX.",
        epilog="Exit status: 0 done, 1 the run failed, 2 bad input or configuration.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    raw = argparse.RawDescriptionHelpFormatter
    p_fit = sub.add_parser(
        "fit", formatter_class=raw,
        help="fit your own files (CSV, TSV, Parquet) or a bundled data set as a YAML file says",
        description="Fit a model as described by a YAML file. The output folder gets the store (resumable), "
                    "summary.csv, plots/*.png and a self-contained report.html.",
        epilog=SCHEMA_DOC + "\n\nExample (your own files):\n  data:\n    id: line\n    Y: phenotypes.csv\n"
               "    covariates: covariates.csv\n    relmat:\n      line: {matrix: K.csv}\n  model:\n"
               "    formula: \"~ 1 + site + (1|line)\"\n    n_factors: 4\n    h2_divisions: 20\n  sampling: "
               "{num_warmup: 1000, num_samples: 1000, thin: 2, num_chains: 2, seed: 0}",
    )
    p_fit.add_argument("config", metavar="CONFIG.yaml", help="YAML configuration file")
    p_fit.add_argument("--out", "--store", dest="out", metavar="DIR",
                       help="output folder (store, summary, plots, report); default output.dir of the "
                            "configuration, else runs/<config name>")
    p_fit.add_argument("--overwrite", action="store_true", help="replace a run already in the output folder")
    _add_device_arguments(p_fit)

    p_resume = sub.add_parser("resume", help="finish (or extend) a stored run and refresh its outputs",
                              description="Finish a stored run that was cut short, or add draws to it; then "
                                          "rewrite summary.csv, the plots and report.html.")
    p_resume.add_argument("run", metavar="DIR", help="the run's folder")
    p_resume.add_argument("--samples", type=int, default=None, metavar="N", help="add N draws to a finished run")
    _add_device_arguments(p_resume)

    p_summary = sub.add_parser("summary", help="print h2, genetic correlations and r_hat of a stored run",
                               description="Print the summary of a stored run.")
    p_summary.add_argument("run", metavar="DIR", help="the run's folder")
    p_summary.add_argument("--csv", metavar="FILE", help="also write the full table (mean, sd, interval, ESS, "
                                                         "r_hat of h2, G and B) to FILE")

    p_predict = sub.add_parser("predict", help="write the genetic values of a stored run to a CSV file",
                               description="Genetic values (posterior means; with intervals when the run kept "
                                           "them per draw) of every level of the relationship matrix, including "
                                           "levels without data, as a tidy CSV: level, trait, mean, lower, upper.")
    p_predict.add_argument("run", metavar="DIR", help="the run's folder")
    p_predict.add_argument("--out", required=True, metavar="FILE", help="CSV (or .tsv) file to write")
    p_predict.add_argument("--levels", metavar="FILE", help="predict these levels only: one per line, or the first "
                                                            "column of a CSV/TSV")
    p_predict.add_argument("--interval", type=float, metavar="P", help="probability of the equal-tailed interval "
                                                                      "(default 0.9 when the draws were kept)")
    p_predict.add_argument("--effect", metavar="GROUP", help="the random effect (default the first)")

    p_plot = sub.add_parser("plot", help="save plots of a stored run as PNG files",
                            description="Save plots of a stored run: h2 (intervals), correlations (genetic and "
                                        "residual), loadings, trace (the slowest parameters), fitted (against "
                                        "observed).")
    p_plot.add_argument("run", metavar="DIR", help="the run's folder")
    p_plot.add_argument("--kind", action="append", metavar="KIND",
                        choices=["all", "h2", "correlations", "loadings", "trace", "fitted"],
                        help="h2, correlations, loadings, trace, fitted or all (default; repeat for several)")
    p_plot.add_argument("--to", metavar="FOLDER", help="where to write them (default DIR/plots)")

    p_report = sub.add_parser("report", help="rewrite DIR/report.html from the stored run",
                              description="Rewrite the self-contained HTML report (and its plots) of a stored run.")
    p_report.add_argument("run", metavar="DIR", help="the run's folder")

    sub.add_parser("datasets", help="list the bundled data sets with sizes and citations",
                   description="List the bundled data sets with their sizes and citations.")
    return parser


def _add_device_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "several devices and hosts",
        "Split the traits over devices (slamjax._sharding). On several hosts, start the same command "
        "once per host: under Slurm with --distributed (JAX reads the job's variables), elsewhere with "
        "--coordinator HOST:PORT --num-processes N --process-id I (I = 0 .. N-1; process 0 prints and "
        "writes the store).",
    )
    group.add_argument("--devices", metavar="N|all", help="split the traits over N devices (all: every device "
                       "of every process)")
    group.add_argument("--distributed", action="store_true", help="jax.distributed.initialize() from the "
                       "cluster's environment (Slurm, Open MPI)")
    group.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0's coordinator")
    group.add_argument("--num-processes", type=int, metavar="N", help="how many processes take part")
    group.add_argument("--process-id", type=int, metavar="I", help="this process's index, 0 .. N-1")


def _devices(args) -> int | None:
    """The device count asked for (None: one device); starts jax.distributed first if asked."""
    import jax

    explicit = (args.coordinator, args.num_processes, args.process_id)
    if any(value is not None for value in explicit):
        if any(value is None for value in explicit):
            raise SlamjaxInputError("--coordinator, --num-processes and --process-id go together; pass all three")
        if args.distributed:
            raise SlamjaxInputError("--distributed reads the cluster's environment; drop it or --coordinator")
    if args.distributed or explicit[0] is not None:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU devices; GPUs use NCCL
        jax.distributed.initialize(*explicit) if explicit[0] is not None else jax.distributed.initialize()
    if args.devices is None:
        return None
    if args.devices == "all":
        return jax.device_count()
    try:
        return int(args.devices)
    except ValueError:
        raise SlamjaxInputError(f"--devices: a count or 'all', got {args.devices!r}") from None


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _dispatch(args) -> None:
    if args.command == "fit":
        config = load_config(args.config)
        folder = _output_folder(config, args.config, args.out)
        _check_output_folder(folder, args.overwrite)
        fit(config, store=folder, devices=_devices(args), overwrite=args.overwrite)
    elif args.command == "resume":
        resume(args.run, args.samples, devices=_devices(args))
    elif args.command == "summary":
        summary(args.run, csv=args.csv)
    elif args.command == "predict":
        predict(args.run, args.out, levels=args.levels, interval=args.interval, effect=args.effect)
    elif args.command == "plot":
        plot(args.run, args.kind or ["all"], folder=args.to)
    elif args.command == "report":
        report(args.run)
    elif args.command == "datasets":
        datasets()
    else:  # pragma: no cover - argparse refuses unknown commands
        raise SlamjaxInputError(f"unknown command {args.command!r}")


@float64
def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``slamjax`` console script; returns the exit status (0, 1 or 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with status 2 on bad usage
    try:
        _dispatch(args)
        return 0
    except SlamjaxInputError as error:
        print(f"slamjax: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - a failed run: one line, the traceback on request
        if os.environ.get("SLAMJAX_TRACEBACK"):
            traceback.print_exc()
        print(f"slamjax: run failed: {type(error).__name__}: {_one_line(error)} "
              f"(SLAMJAX_TRACEBACK=1 shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
