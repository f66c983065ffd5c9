"""The YAML configuration of ``slamjax fit``: its schema, and checking a file against it.

A configuration names your own files (CSV, TSV or Parquet; paths relative to the configuration
file), a bundled data set (``data: wheat``, ``mice``, ``grav2`` or ``bottomly``, each with a
default formula that ``model.formula`` may replace), or data simulated from the model
(``data: {simulate: {n: 500, p: 100, k: 5}}``)::

    data:
      id: line                     # the column naming the individual in every table ("id")
      Y: phenotypes.csv            # wide: one row per individual, one column per trait
      covariates: covariates.csv   # optional: joined on the id, read by the formula
      relmat:                      # optional: grouping variable -> its covariance over levels
        line: {matrix: K.csv}      # or {markers: M.csv, coding: "01"} or {pedigree: ped.csv}
    model:
      formula: "~ 1 + env + (1|line)"
      n_factors: 4
      h2_divisions: 20
    sampling: {num_warmup: 1000, num_samples: 1000, thin: 2, num_chains: 2, seed: 0}

Every key of ``model`` (but ``formula``, ``missing``) and of ``sampling`` (but
``record_genetic_values``) is required; the other sections are optional. ``SCHEMA_DOC`` lists
every key with its meaning and default (``slamjax fit --help`` prints it). ``load_config``
checks a file before anything is read or sampled: an unknown key, a value of the wrong type or
range, or a file that is not there raises :class:`ConfigError` naming the key (and the file),
which the command line reports on one line with exit status 2. Tables themselves are read and
checked against each other by ``slamjax._user_data``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ._errors import SlamjaxInputError

__all__ = ["ConfigError", "DEFAULT_FORMULAS", "KNOWN_DATASETS", "SCHEMA_DOC", "data_kind", "load_config",
           "observation_model", "validate_config"]

#: Bundled data sets that ``data:`` may name; each has a loader ``slamjax.datasets.load_<name>``.
KNOWN_DATASETS: tuple[str, ...] = ("wheat", "mice", "grav2", "bottomly")

#: The formula each bundled data set is fitted with unless ``model.formula`` says otherwise.
DEFAULT_FORMULAS: dict[str, str] = {
    "wheat": "~ 1 + (1|line)",
    "mice": "~ GENDER + season + Litter + (1|mouse) + (1|cage)",
    "grav2": "~ 1 + (1|id)",
    "bottomly": "~ strain + (1|experiment.number)",
}

#: Table formats read by suffix (``.gz`` allowed for text).
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")


class ConfigError(SlamjaxInputError):
    """The configuration file is missing, unreadable or invalid (the message names the key)."""


_REQUIRED = object()


@dataclass(frozen=True)
class Key:
    """One key of a section: what it means, how it is checked (value, key path -> value) and its default."""

    doc: str
    check: Callable[[Any, str, "_Context"], Any]
    default: Any = _REQUIRED
    shown_default: str | None = None


@dataclass(frozen=True)
class _Context:
    source: str  # the file, for messages
    base: Path  # relative paths start here

    def fail(self, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {message}")


# ----------------------------------------------------------------------------- checks


def _integer(minimum: int | None):
    def check(value, key, ctx):
        if isinstance(value, bool) or not isinstance(value, int):
            bound = f" >= {minimum}" if minimum is not None else ""
            raise ctx.fail(f"'{key}' must be an integer{bound}, got {value!r}")
        if minimum is not None and value < minimum:
            raise ctx.fail(f"'{key}' must be >= {minimum}, got {value}")
        return int(value)

    return check


def _number(low: float = 0.0, *, inclusive: bool = False, high: float | None = None):
    def check(value, key, ctx):
        ok = not isinstance(value, bool) and isinstance(value, (int, float))
        if ok:
            value = float(value)
            ok = (value >= low if inclusive else value > low) and (high is None or value < high)
        if not ok:
            bound = f"{'>=' if inclusive else '>'} {low:g}" + (f" and < {high:g}" if high is not None else "")
            raise ctx.fail(f"'{key}' must be a number {bound}, got {value!r}")
        return value

    return check


def _string(value, key, ctx):
    if not isinstance(value, str) or not value:
        raise ctx.fail(f"'{key}' must be a non-empty string, got {value!r}")
    return value


def _choice(*options: str):
    def check(value, key, ctx):
        if value not in options:
            raise ctx.fail(f"'{key}' must be one of {', '.join(options)}, got {value!r}")
        return value

    return check


def _boolean(value, key, ctx):
    if not isinstance(value, bool):
        raise ctx.fail(f"'{key}' must be true or false, got {value!r}")
    return value


def _auto_or_boolean(value, key, ctx):
    if value != "auto" and not isinstance(value, bool):
        raise ctx.fail(f"'{key}' must be true, false or auto, got {value!r}")
    return value


def _strings(value, key, ctx):
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, (str, int)) for v in value):
        raise ctx.fail(f"'{key}' must be a list of column names, got {value!r}")
    return [str(v) for v in value]


def _table_file(value, key, ctx):
    """A path to an existing CSV/TSV/Parquet file, resolved against the configuration's folder."""
    if not isinstance(value, str) or not value:
        raise ctx.fail(f"'{key}' must be the path of a CSV, TSV or Parquet file, got {value!r}")
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = ctx.base / path
    suffixes = [s.lower() for s in path.suffixes]
    suffix = suffixes[-2] if suffixes[-1:] == [".gz"] and len(suffixes) >= 2 else (suffixes[-1] if suffixes else "")
    if suffix not in TABLE_SUFFIXES:
        raise ctx.fail(f"'{key}': {value!r} is not a .csv, .tsv, .txt or .parquet file (optionally .gz for text)")
    if not path.is_file():
        raise ctx.fail(f"'{key}': file not found: {path}")
    return str(path)


def _output_dir(value, key, ctx):
    if not isinstance(value, str) or not value:
        raise ctx.fail(f"'{key}' must be a folder path, got {value!r}")
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else ctx.base / path)


def _section(spec: dict[str, Key], shorthand: str | None = None):
    """A nested mapping checked against ``spec``; a plain string means ``{shorthand: string}``."""

    def check(value, key, ctx):
        if shorthand is not None and isinstance(value, str):
            value = {shorthand: value}
        return _check_mapping(value, spec, key, ctx)

    return check


def _check_mapping(raw: Any, spec: dict[str, Key], where: str, ctx: _Context) -> dict:
    """Check a mapping against ``spec``: no unknown key, every required key, each value checked."""
    prefix = f"{where}." if where else ""
    if not isinstance(raw, Mapping):
        keys = ", ".join(map(repr, spec))
        raise ctx.fail(f"'{where}' must be a mapping with keys {keys}, got {raw!r}")
    unknown = sorted(str(k) for k in raw if k not in spec)
    if unknown:
        where_text = f"in '{where}'" if where else "at the top level"
        raise ctx.fail(f"unknown key(s) {', '.join(map(repr, unknown))} {where_text}; "
                       f"allowed keys are {', '.join(map(repr, spec))}")
    missing = [k for k, field in spec.items() if field.default is _REQUIRED and k not in raw]
    if missing:
        if not where:
            raise ctx.fail(f"missing key(s) {', '.join(map(repr, missing))} at the top level; {EXAMPLE_LINE}")
        raise ctx.fail(
            f"missing key(s) {', '.join(prefix + k for k in missing)} "
            f"({'; '.join(f'{k}: {spec[k].doc}' for k in missing)})"
        )
    out = {}
    for k, field in spec.items():
        if k in raw:
            out[k] = field.check(raw[k], prefix + k, ctx)
        elif field.default is not None:
            out[k] = field.default
    return out


# ----------------------------------------------------------------------------- the data section


def _relmat_entry(value, key, ctx):
    entry = _check_mapping(value, _RELMAT_SPEC, key, ctx)
    given = [k for k in ("matrix", "markers", "pedigree") if k in entry]
    if len(given) != 1:
        raise ctx.fail(f"'{key}' needs exactly one of matrix, markers or pedigree, got {given or 'none'}")
    extra = {"matrix": (), "markers": ("coding",), "pedigree": ("sire", "dam")}[given[0]]
    stray = [k for k in ("coding", "sire", "dam") if k in value and k not in extra]
    if stray:
        raise ctx.fail(f"'{key}.{stray[0]}' goes with {'markers' if stray[0] == 'coding' else 'pedigree'}, "
                       f"not {given[0]}")
    entry["kind"] = given[0]
    return entry


def _relmat(value, key, ctx):
    if not isinstance(value, Mapping) or not value:
        raise ctx.fail(f"'{key}' must map grouping variables to {{matrix: FILE}}, {{markers: FILE}} or "
                       f"{{pedigree: FILE}}, got {value!r}")
    return {str(group): _relmat_entry(entry, f"{key}.{group}", ctx) for group, entry in value.items()}


_Y_SPEC = {
    "file": Key("the traits: CSV, TSV or Parquet (a path alone means a wide table)", _table_file),
    "format": Key("wide (one row per individual, one column per trait) or tall (one row per "
                  "individual and trait)", _choice("wide", "tall"), "wide"),
    "traits": Key("the traits to fit (wide: columns; tall: values of the trait column)", _strings, None,
                  "every column but the id / every trait"),
    "trait": Key("tall: the column naming the trait", _string, "trait"),
    "value": Key("tall: the column holding the value", _string, "value"),
}
_COVARIATES_SPEC = {
    "file": Key("one row per individual, joined to Y on the id", _table_file),
    "columns": Key("columns to keep", _strings, None, "all"),
}
_RELMAT_SPEC = {
    "matrix": Key("square table, first column and header the level labels", _table_file, None, "-"),
    "markers": Key("individuals x markers (a column named as data.id, else the first column), turned "
                   "into a genomic relationship matrix (VanRaden 2008)", _table_file, None, "-"),
    "coding": Key("markers: 012 (allele counts), 01 (inbred lines) or -101",
                  lambda v, k, c: _choice("012", "01", "-101")(str(v) if isinstance(v, int) and not
                                                                isinstance(v, bool) else v, k, c), "012"),
    "pedigree": Key("columns data.id, sire and dam (unknown parents: empty or 0), turned into the "
                    "numerator relationship matrix A", _table_file, None, "-"),
    "sire": Key("pedigree: the sire column", _string, "sire"),
    "dam": Key("pedigree: the dam column", _string, "dam"),
}
_DATA_SPEC = {
    "id": Key("the column naming the individual in every table", _string, "id"),
    "Y": Key("the traits (see data.Y.*)", _section(_Y_SPEC, shorthand="file")),
    "covariates": Key("the covariates (see data.covariates.*)", _section(_COVARIATES_SPEC, shorthand="file"),
                      None, "none"),
    "relmat": Key("grouping variable -> one of {matrix: FILE}, {markers: FILE, coding: 012}, "
                  "{pedigree: FILE, sire: sire, dam: dam}", _relmat, None, "none: identity"),
}


_SIMULATE_SPEC = {
    "n": Key("individuals", _integer(2), 500),
    "p": Key("traits", _integer(1), 100),
    "k": Key("true factors", _integer(1), 5),
    "seed": Key("seed of the simulated data (sampling.seed seeds the sampler)", _integer(None), 0),
    "fraction_missing": Key("share of the cells of Y made missing at random", _number(0.0, inclusive=True, high=1.0),
                            0.0),
    "n_groups": Key("add an iid second random effect with this many groups (covariate 'group')", _integer(2), None,
                    "none"),
}


def _data(value, key, ctx):
    if isinstance(value, str):
        if value not in KNOWN_DATASETS:
            raise ctx.fail(f"unknown data set {value!r} for 'data'; bundled data sets: {', '.join(KNOWN_DATASETS)}")
        return value
    if not isinstance(value, Mapping):
        raise ctx.fail(f"'data' must be the name of a bundled data set ({', '.join(KNOWN_DATASETS)}), "
                       f"{{simulate: {{n, p, k}}}}, or a mapping naming your files (id, Y, covariates, relmat), "
                       f"got {value!r}")
    if "simulate" in value:
        if len(value) > 1:
            others = ", ".join(repr(str(k)) for k in value if k != "simulate")
            raise ctx.fail(f"'data.simulate' stands alone: simulated data take no {others}")
        return {"simulate": _check_mapping(value["simulate"] or {}, _SIMULATE_SPEC, f"{key}.simulate", ctx)}
    return _check_mapping(value, _DATA_SPEC, key, ctx)


def data_kind(config: dict) -> str:
    """``"bundled"``, ``"simulated"`` or ``"files"``: what the ``data`` section of a checked config names."""
    data = config["data"]
    if isinstance(data, str):
        return "bundled"
    return "simulated" if "simulate" in data else "files"


_VOOM_SPEC = {
    "min_cpm": Key("keep the genes with more than this many counts per million ...", _number(0.0, inclusive=True),
                   None, "no filter"),
    "min_samples": Key("... in at least this many individuals (edgeR's usual filter before voom)", _integer(1), 3),
    "most_expressed": Key("then keep the N genes of largest mean log-cpm (voom's weights still come from every "
                          "gene kept by the filter): a quicker run", _integer(1), None, "all"),
}


def _observation(value, key, ctx):
    """``gaussian``, ``voom`` or ``{voom: {min_cpm, min_samples, most_expressed}}`` -> ``{"model": name, ...}``."""
    if value in ("gaussian", "voom"):
        return {"model": value}
    if isinstance(value, Mapping) and list(value) == ["voom"]:
        return {"model": "voom", **_check_mapping(value["voom"] or {}, _VOOM_SPEC, f"{key}.voom", ctx)}
    raise ctx.fail(f"'{key}' must be gaussian, voom or {{voom: {{min_cpm: 1, min_samples: 3, most_expressed: N}}}}, "
                   f"got {value!r}")


def observation_model(config: dict) -> dict:
    """The checked ``observation`` section as ``{"model": "gaussian" | "voom", ...filters}``."""
    return config.get("observation") or {"model": "gaussian"}


# ----------------------------------------------------------------------------- the other sections


def _lambda_prior(value, key, ctx):
    if isinstance(value, str):
        value = {"prior": value}
    if not isinstance(value, Mapping) or "prior" not in value:
        raise ctx.fail(f"'{key}' must be mgps, horseshoe or tpb, or a mapping with key 'prior' and its "
                       f"hyperparameters, got {value!r}")
    name = value["prior"]
    spec = _LAMBDA_PRIORS.get(name)
    if spec is None:
        raise ctx.fail(f"'{key}.prior' must be one of {', '.join(_LAMBDA_PRIORS)}, got {name!r}")
    out = _check_mapping({k: v for k, v in value.items() if k != "prior"}, spec, key, ctx)
    return {"prior": name, **out}


_SHRINKAGE = {
    "delta_1_shape": Key("Gamma shape of the first factor's column precision", _number(), None, "2"),
    "delta_1_rate": Key("its rate", _number(), None, "1"),
    "delta_2_shape": Key("Gamma shape of the other factors' precision multipliers", _number(), None, "3"),
    "delta_2_rate": Key("their rate", _number(), None, "1"),
}
_LAMBDA_PRIORS = {
    "mgps": {"nu": Key("degrees of freedom of the element-wise precisions", _number(), None, "3"), **_SHRINKAGE},
    "horseshoe": dict(_SHRINKAGE),
    "tpb": {"a": Key("first TPB shape", _number(), None, "0.5"), "b": Key("second TPB shape", _number(), None, "0.5"),
            **_SHRINKAGE},
}


def _h2_prior(value, key, ctx):
    if value == "uniform":
        return {"prior": "uniform"}
    if isinstance(value, Mapping) and set(value) == {"beta"}:
        pair = value["beta"]
        if (isinstance(pair, list) and len(pair) == 2 and all(not isinstance(v, bool) and isinstance(v, (int, float))
                                                              for v in pair) and pair[0] >= 1 and pair[1] > 0):
            return {"prior": "beta", "a": float(pair[0]), "b": float(pair[1])}
        raise ctx.fail(f"'{key}.beta' must be [a, b] with a >= 1 and b > 0 (a Beta(a, b) density over each "
                       f"effect's h2), got {pair!r}")
    raise ctx.fail(f"'{key}' must be uniform or {{beta: [a, b]}}, got {value!r}")


_VARIANCE = {"V": Key("prior guess of the variance", _number()), "nu": Key("its weight (degrees of freedom)", _number())}
_PRIORS_SPEC = {
    "Lambda": Key("loadings: mgps | horseshoe | tpb, or {prior: NAME, hyperparameter: value}", _lambda_prior,
                  None, "mgps"),
    "h2": Key("trait h2: uniform, or {beta: [a, b]} (a >= 1)", _h2_prior, None, "uniform"),
    "F_h2": Key("factor h2: uniform, or {beta: [a, b]}", _h2_prior, None, "uniform"),
    "tot_Eta_var": Key("{V, nu}: trait variance not explained by the factors", _section(_VARIANCE), None,
                       "{V: 0.5, nu: 5}"),
    "tot_F_var": Key("{V, nu}: total variance of each factor", _section(_VARIANCE), None, "{V: 0.9, nu: 20}"),
}
_MODEL_SPEC = {
    "formula": Key("lme4 formula over the covariates, e.g. '~ 1 + env + (1|line)'", _string, None,
                   "your files: '~ 1 + (1|G)' for each relmat group G, else (1|id); simulated: '~ 1 + (1|id)' "
                   "(+ (1|group)); bundled: " + "; ".join(f"{k} '{v}'" for k, v in DEFAULT_FORMULAS.items())),
    "n_factors": Key("number of latent factors", _integer(1)),
    "h2_divisions": Key("number of grid points for each factor's and trait's h2", _integer(2)),
    "missing": Key("missing cells: impute, groups or auto", _choice("impute", "groups", "auto"), None, "auto"),
}
_SAMPLING_SPEC = {
    "num_warmup": Key("warm-up (burn-in) iterations per chain", _integer(0)),
    "num_samples": Key("post-warm-up iterations per chain", _integer(1)),
    "thin": Key("keep every thin-th post-warm-up draw", _integer(1)),
    "num_chains": Key("number of independent chains", _integer(1)),
    "seed": Key("random seed", _integer(None)),
    "dtype": Key("float64, or float32 (faster on GPUs; see the README's float32 section)",
                 _choice("float64", "float32"), None, "float64"),
    "record_genetic_values": Key("keep every draw of the genetic values (prediction intervals): true, false or "
                                 "auto (when they take at most 256 MB)", _auto_or_boolean, None, "auto"),
}
_PREDICT_SPEC = {
    "levels": Key("levels to predict (a list), or all", lambda v, k, c: v if v == "all" else _strings(v, k, c),
                  "all"),
    "interval": Key("probability of the equal-tailed interval", _number(0.0, high=1.0), 0.9),
}
_OUTPUT_SPEC = {
    "dir": Key("output folder (relative to the configuration file); --out overrides it", _output_dir, None,
               "runs/<config name> in the current folder"),
    "predict": Key("write predictions.csv and put them in the report: {levels, interval}", _section(_PREDICT_SPEC),
                   None, "no predictions"),
    "plots": Key("write the PNG plots", _boolean, True),
}
_TOP_SPEC = {
    "data": Key("a bundled data set (wheat, mice, grav2, bottomly), {simulate: {...}} (see data.simulate.*), "
                "or your files (see data.*)", _data),
    "model": Key("the model (see model.*)", _section(_MODEL_SPEC)),
    "observation": Key("how the data inform the traits: gaussian, or voom (Y holds RNA-seq read counts; "
                       "see observation.voom.*)", _observation, None, "gaussian"),
    "priors": Key("priors (see priors.*)", _section(_PRIORS_SPEC), None, "MegaLMM's defaults"),
    "sampling": Key("the sampler (see sampling.*)", _section(_SAMPLING_SPEC)),
    "output": Key("what fit writes (see output.*)", _section(_OUTPUT_SPEC), None, "see output.*"),
}

EXAMPLE_LINE = "see `slamjax fit --help` for the keys, or configs/wheat.yaml for an example"

_NESTED = {"data": _DATA_SPEC, "data.Y": _Y_SPEC, "data.covariates": _COVARIATES_SPEC,
           "data.relmat.GROUP": _RELMAT_SPEC, "model": _MODEL_SPEC, "priors": _PRIORS_SPEC,
           "sampling": _SAMPLING_SPEC, "output": _OUTPUT_SPEC, "output.predict": _PREDICT_SPEC}


def _schema_lines(spec: dict[str, Key], prefix: str = "") -> list[str]:
    lines = []
    for name, field in spec.items():
        key = "data.relmat.GROUP" if prefix + name == "data.relmat" else prefix + name
        default = "required" if field.default is _REQUIRED else (
            f"default: {field.shown_default if field.shown_default is not None else field.default}")
        lines.append(f"  {key:<32} {field.doc} [{default}]")
        if key in _NESTED:
            lines += _schema_lines(_NESTED[key], key + ".")
        if key == "data":
            lines += _schema_lines(_SIMULATE_SPEC, "data.simulate.")
        if key == "observation":
            lines += _schema_lines(_VOOM_SPEC, "observation.voom.")
    return lines


#: Every key of the configuration with its meaning and default, one per line.
SCHEMA_DOC = "configuration keys (paths relative to the configuration file):\n" + "\n".join(_schema_lines(_TOP_SPEC))


# ----------------------------------------------------------------------------- entry points


def validate_config(raw: Any, source: str = "config", base: str | Path = ".") -> dict:
    """Check a parsed configuration and return a normalised copy (defaults filled in, paths absolute).

    A bundled data set (``data: wheat``) gives ``{"data": name, "model": ..., "sampling": ...}`` plus
    the optional sections given; simulated data give ``data`` as ``{"simulate": {...}}``; your own
    files give ``data`` as a mapping with the keys of ``data.*`` (``data_kind`` tells which). A given
    ``observation`` becomes ``{"model": name, ...}``. Raises :class:`ConfigError` naming the
    offending key.
    """
    ctx = _Context(source=source, base=Path(base))
    if not isinstance(raw, Mapping):
        raise ctx.fail(f"the top level must be a mapping with keys 'data', 'model' and 'sampling', "
                       f"got {type(raw).__name__}; {EXAMPLE_LINE}")
    config = _check_mapping(raw, _TOP_SPEC, "", ctx)
    formula = config["model"].get("formula")
    if formula is not None and "~" not in formula:
        raise ctx.fail(f"'model.formula' must be a one-sided formula such as '~ 1 + (1|id)', got {formula!r}")
    voom = observation_model(config)["model"] == "voom"
    kind = data_kind(config)
    if kind == "simulated" and voom:
        raise ctx.fail("'observation': simulated data are Gaussian; voom needs read counts")
    if kind == "bundled":
        counts = config["data"] == "bottomly"
        if voom and not counts:
            raise ctx.fail(f"'observation': voom needs read counts; {config['data']} holds measurements "
                           f"(of the bundled data sets only bottomly holds counts): leave observation out")
        if counts and not voom:
            raise ctx.fail("'observation': bottomly holds RNA-seq read counts; fit them with 'observation: voom' "
                           "(e.g. {voom: {min_cpm: 1, min_samples: 3}})")
    return config


def load_config(path: str | Path) -> dict:
    """Read and validate a YAML configuration file (see the module docstring)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())
        raise ConfigError(f"{path}: not valid YAML: {first}") from None
    if raw is None:
        raise ConfigError(f"{path}: the file is empty; {EXAMPLE_LINE}")
    return validate_config(raw, source=str(path), base=path.resolve().parent)
