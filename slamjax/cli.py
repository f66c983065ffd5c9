"""Command-line interface: ``slamjax fit CONFIG.yaml``.

The configuration file is YAML of the form::

    data: wheat            # bundled data set name
    model:
      n_factors: 4
      h2_divisions: 20
    sampling:
      num_warmup: 1000
      num_samples: 1000
      thin: 2
      num_chains: 2
      seed: 0

Every key is required and no other key is allowed. Configuration errors are
reported on stderr and give exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd
import yaml

from ._errors import SlamjaxInputError
from ._x64 import float64

#: Bundled data sets that ``data:`` may name; each has a loader ``slamjax.datasets.load_<name>``.
KNOWN_DATASETS: tuple[str, ...] = ("wheat",)

# section -> key -> (minimum allowed value, description)
_SCHEMA: dict[str, dict[str, tuple[int | None, str]]] = {
    "model": {
        "n_factors": (1, "number of latent factors"),
        "h2_divisions": (1, "number of grid points for each factor's and trait's h2"),
    },
    "sampling": {
        "num_warmup": (0, "warm-up (burn-in) iterations per chain"),
        "num_samples": (1, "post-warm-up iterations per chain"),
        "thin": (1, "keep every thin-th post-warm-up draw"),
        "num_chains": (1, "number of independent chains"),
        "seed": (None, "random seed"),
    },
}


class ConfigError(SlamjaxInputError):
    """The configuration file is missing, unreadable or invalid."""


def _example() -> str:
    return (
        "expected, for example:\n"
        "  data: wheat\n"
        "  model:\n"
        "    n_factors: 4\n"
        "    h2_divisions: 20\n"
        "  sampling:\n"
        "    num_warmup: 1000\n"
        "    num_samples: 1000\n"
        "    thin: 2\n"
        "    num_chains: 2\n"
        "    seed: 0"
    )


def validate_config(raw: Any, source: str = "config") -> dict:
    """Check a parsed configuration and return a normalised copy.

    Raises :class:`ConfigError` naming the offending key when a key is
    missing, unknown or has a bad value.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{source}: the top level must be a mapping with keys 'data', 'model' and "
            f"'sampling', got {type(raw).__name__}\n{_example()}"
        )
    allowed_top = {"data", *_SCHEMA}
    unknown = sorted(str(k) for k in raw if k not in allowed_top)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(map(repr, unknown))} at the top level; "
            f"allowed keys are 'data', 'model', 'sampling'"
        )
    missing = [k for k in ("data", *_SCHEMA) if k not in raw]
    if missing:
        raise ConfigError(
            f"{source}: missing key(s) {', '.join(map(repr, missing))}\n{_example()}"
        )

    data = raw["data"]
    if not isinstance(data, str):
        raise ConfigError(
            f"{source}: 'data' must be the name of a bundled data set "
            f"({', '.join(KNOWN_DATASETS)}), got {data!r}"
        )
    if data not in KNOWN_DATASETS:
        raise ConfigError(
            f"{source}: unknown data set {data!r} for 'data'; "
            f"bundled data sets: {', '.join(KNOWN_DATASETS)}"
        )

    out: dict[str, Any] = {"data": data}
    for section, keys in _SCHEMA.items():
        block = raw[section]
        if not isinstance(block, Mapping):
            raise ConfigError(
                f"{source}: '{section}' must be a mapping with keys "
                f"{', '.join(map(repr, keys))}, got {block!r}"
            )
        unknown = sorted(str(k) for k in block if k not in keys)
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {', '.join(map(repr, unknown))} in '{section}'; "
                f"allowed keys are {', '.join(map(repr, keys))}"
            )
        missing = [k for k in keys if k not in block]
        if missing:
            raise ConfigError(
                f"{source}: missing key(s) "
                f"{', '.join(f'{section}.{k}' for k in missing)} "
                f"({'; '.join(f'{k}: {keys[k][1]}' for k in missing)})"
            )
        values: dict[str, int] = {}
        for key, (minimum, _desc) in keys.items():
            value = block[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(
                    f"{source}: '{section}.{key}' must be an integer, got {value!r}"
                )
            if minimum is not None and value < minimum:
                raise ConfigError(
                    f"{source}: '{section}.{key}' must be >= {minimum}, got {value}"
                )
            values[key] = int(value)
        out[section] = values
    return out


def load_config(path: str | Path) -> dict:
    """Read and validate a YAML configuration file (see the module docstring)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if raw is None:
        raise ConfigError(f"{path}: the file is empty\n{_example()}")
    return validate_config(raw, source=str(path))


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
    if not isinstance(mean, pd.Series):
        mean = pd.Series(np.asarray(mean))
    q = run.posterior["h2"].quantile([0.05, 0.95], dim=("chain", "draw"))
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


def format_results(run: Any, elapsed: float) -> str:
    """Elapsed time, h2 per trait, genetic correlations and the largest r_hat."""
    lines = [
        f"Elapsed: {elapsed:.1f} s",
        "",
        "Heritability h2 per trait (posterior mean [90% interval]):",
    ]
    h2 = h2_table(run)
    width = max(len(str(t)) for t in h2.index)
    for trait, row in h2.iterrows():
        lines.append(
            f"  {str(trait):<{width}}  {row['mean']:.3f}  [{row['q05']:.3f}, {row['q95']:.3f}]"
        )
    lines += ["", "Genetic correlations (from the posterior mean of G):"]
    corr = genetic_correlation(run.posterior_mean("G")).round(2)
    table = corr.to_string(float_format=lambda x: f"{x:.2f}")
    lines += ["  " + line for line in table.splitlines()]
    lines.append("")
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
    """Everything that ``slamjax fit`` prints."""
    return format_header(ds, config) + "\n" + format_results(run, elapsed)


@float64
def fit(config: dict, out: TextIO | None = None, store: str | None = None, devices=None) -> None:
    """Load the data set, build the model, sample and print the report to ``out``."""
    import slamjax as sj

    out = sys.stdout if out is None else out
    loader = getattr(sj.datasets, f"load_{config['data']}")
    ds = loader()
    m, s = config["model"], config["sampling"]
    print(format_header(ds, config), file=out, flush=True)
    start = time.perf_counter()
    model = sj.Model(
        Y=ds.Y, K=ds.relmat["line"], n_factors=m["n_factors"], h2_divisions=m["h2_divisions"]
    )
    run = sj.sample(
        model,
        num_warmup=s["num_warmup"],
        num_samples=s["num_samples"],
        thin=s["thin"],
        num_chains=s["num_chains"],
        seed=s["seed"],
        store=store,
        devices=devices,
    )
    elapsed = time.perf_counter() - start
    print(format_results(run, elapsed), file=out, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slamjax", description="Bayesian sparse-factor multi-trait mixed models in JAX."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p_fit = sub.add_parser(
        "fit",
        help="fit a model to a bundled data set as described by a YAML file",
        description="Fit a model to a bundled data set as described by a YAML file.",
    )
    p_fit.add_argument("config", metavar="CONFIG.yaml", help="YAML configuration file")
    p_fit.add_argument("--store", metavar="DIR", help="write draws and checkpoints to DIR (resumable)")
    _add_device_arguments(p_fit)
    p_resume = sub.add_parser("resume", help="finish (or extend) a run written with --store",
                              description="Finish a stored run that was cut short, or add draws to it.")
    p_resume.add_argument("run", metavar="DIR", help="the run's directory")
    p_resume.add_argument("--samples", type=int, default=None, metavar="N", help="add N draws to a finished run")
    _add_device_arguments(p_resume)
    p_summary = sub.add_parser("summary", help="print h2, genetic correlations and r_hat of a stored run",
                               description="Print the summary of a stored run.")
    p_summary.add_argument("run", metavar="DIR", help="the run's directory")
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


@float64
def resume(path: str, samples: int | None, out: TextIO | None = None, devices=None) -> None:
    """Reopen a stored run, continue it and print its summary."""
    import slamjax as sj

    out = sys.stdout if out is None else out
    run = sj.open_run(path, devices=devices)
    run.resume(num_samples=samples)
    print(format_results(run, run.elapsed), file=out, flush=True)


@float64
def summary(path: str, out: TextIO | None = None) -> None:
    """Print the summary of a stored run as it stands."""
    import slamjax as sj

    out = sys.stdout if out is None else out
    run = sj.open_run(path)
    state = "complete" if run.complete else "incomplete: `slamjax resume` finishes it"
    print(f"Run {path}: {run.draws['h2'].shape[1]} draws x {run.settings['num_chains']} chains ({state})", file=out)
    print(format_results(run, run.elapsed), file=out, flush=True)


@float64
def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``slamjax`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with status 2 on bad usage
    try:
        if args.command == "fit":
            fit(load_config(args.config), store=args.store, devices=_devices(args))
            return 0
        if args.command == "resume":
            resume(args.run, args.samples, devices=_devices(args))
            return 0
        if args.command == "summary":
            summary(args.run)
            return 0
    except SlamjaxInputError as exc:
        print(f"slamjax: error: {exc}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
