"""Your own data for ``slamjax fit``: read the tables a configuration names and build the model.

``read_inputs(config)`` reads Y (wide or tall), the covariates and the relationship matrices
(a labelled square matrix, a marker table turned into a GRM, or a pedigree turned into A),
checks them against each other and returns :class:`Inputs`; ``build_model`` turns them into an
``sj.Model``; ``dataset_inputs`` gives the same for a bundled or simulated data set. Every problem raises :class:`slamjax._config.ConfigError` naming the
configuration key, before any JAX code runs (the formula is checked on the covariates by
``slamjax.formula.build_design``, pandas only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ._config import DEFAULT_FORMULAS, ConfigError, observation_model
from ._errors import SlamjaxInputError

__all__ = ["Inputs", "build_model", "build_priors", "dataset_inputs", "read_inputs", "read_table"]

_MAX_SHOWN = 5


@dataclass
class Inputs:
    """What a configuration's files hold, ready for ``sj.Model``."""

    Y: pd.DataFrame  # individuals x traits (read counts with observation: voom)
    data: pd.DataFrame  # one row per individual of Y, index = id (text), the id also a column
    relmat: dict[str, pd.DataFrame]
    formula: str
    groups: list[str]  # grouping variables of the formula's random terms
    described: dict[str, str] = field(default_factory=dict)  # config key -> what was read, for people


def _shown(values) -> str:
    values = [str(v) for v in values]
    text = ", ".join(repr(v) for v in values[:_MAX_SHOWN])
    return text + (f", ... ({len(values)} in all)" if len(values) > _MAX_SHOWN else "")


def _separator(path: Path):
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    suffix = suffixes[-1] if suffixes else ""
    return {".csv": ",", ".tsv": "\t"}.get(suffix, "parquet" if suffix in (".parquet", ".pq") else None)


def read_table(path: str | Path, key: str, text_columns: tuple[str, ...] = (), first_as_text: bool = False
               ) -> pd.DataFrame:
    """A CSV (``,``), TSV (tab), .txt (separator sniffed) or Parquet file as a DataFrame.

    ``text_columns`` (and with ``first_as_text`` the first column) are read as text, so that ids
    such as ``007`` keep their zeros and match across files. ``key`` names the file in errors.
    """
    path = Path(path)
    sep = _separator(path)
    try:
        if sep == "parquet":
            try:
                table = pd.read_parquet(path)
            except ImportError:
                raise ConfigError(f"'{key}': reading Parquet needs pyarrow (pip install pyarrow), or give a CSV "
                                  f"file") from None
            for column in list(text_columns) + ([table.columns[0]] if first_as_text and len(table.columns) else []):
                if column in table.columns:
                    table[column] = table[column].map(lambda v: v if pd.isna(v) else str(v))
            return table
        options = dict(sep=sep, engine="python") if sep is None else dict(sep=sep)
        names = list(text_columns)
        if first_as_text:
            header = pd.read_csv(path, nrows=0, **options).columns
            names += list(header[:1])
        return pd.read_csv(path, dtype={name: str for name in names} or None, **options)
    except ConfigError:
        raise
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        message = " ".join(str(error).split())
        raise ConfigError(f"'{key}': cannot read {path}: {message}") from None


def _need_column(table: pd.DataFrame, column: str, column_key: str, file_key: str, path: str) -> None:
    if column not in table.columns:
        raise ConfigError(f"'{column_key}': column {column!r} not found in {file_key} ({Path(path).name}; "
                          f"columns: {_shown(table.columns)})")


def _ids(table: pd.DataFrame, id_column: str, file_key: str) -> pd.Index:
    ids = table[id_column]
    if ids.isna().any():
        rows = list(np.flatnonzero(ids.isna().to_numpy()) + 2)
        raise ConfigError(f"'{file_key}': the id column {id_column!r} is empty on line(s) {_shown(rows)}")
    ids = pd.Index(ids.astype(str))
    if ids.has_duplicates:
        raise ConfigError(f"'{file_key}': id(s) {_shown(ids[ids.duplicated()].unique())} appear more than once "
                          f"in column {id_column!r}; give one row per individual")
    return ids


def _numeric(table: pd.DataFrame, columns, key: str, what: str) -> pd.DataFrame:
    """The columns as float64; a column holding text is refused, naming it and its first bad value."""
    out = {}
    for column in columns:
        values = table[column]
        if not (pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)):
            converted = pd.to_numeric(values, errors="coerce")
            bad = values[converted.isna() & values.notna()]
            if len(bad):
                raise ConfigError(f"'{key}': {what} {column!r} is not numeric (e.g. {str(bad.iloc[0])!r}); "
                                  f"fix the file or leave the column out")
            values = converted
        out[column] = values.astype(float)
    return pd.DataFrame(out, index=table.index)


def _read_Y(config: dict) -> tuple[pd.DataFrame, str]:
    spec, id_column = config["data"]["Y"], config["data"]["id"]
    path = spec["file"]
    if spec["format"] == "wide":
        table = read_table(path, "data.Y.file", (id_column,))
        _need_column(table, id_column, "data.id", "data.Y.file", path)
        traits = spec.get("traits") or [c for c in table.columns if c != id_column]
        absent = [t for t in traits if t not in table.columns]
        if absent:
            raise ConfigError(f"'data.Y.traits': {_shown(absent)} not column(s) of data.Y.file ({Path(path).name}; "
                              f"columns: {_shown(table.columns)})")
        if not traits:
            raise ConfigError(f"'data.Y.file': {Path(path).name} has no trait column besides the id {id_column!r}")
        index = _ids(table, id_column, "data.Y.file")
        Y = _numeric(table, traits, "data.Y.traits", "trait column")
        Y.index = index
        Y.columns = [str(c) for c in Y.columns]
    else:
        from .formula import wide

        trait, value = spec["trait"], spec["value"]
        table = read_table(path, "data.Y.file", (id_column, trait))
        _need_column(table, id_column, "data.id", "data.Y.file", path)
        _need_column(table, trait, "data.Y.trait", "data.Y.file", path)
        _need_column(table, value, "data.Y.value", "data.Y.file", path)
        if len({id_column, trait, value}) != 3:
            raise ConfigError(f"'data.Y.value': data.id, data.Y.trait and data.Y.value must be three different "
                              f"columns, got {id_column!r}, {trait!r}, {value!r}")
        table[value] = _numeric(table, [value], "data.Y.value", "value column")[value]
        if spec.get("traits"):
            absent = [t for t in spec["traits"] if t not in set(table[trait].astype(str))]
            if absent:
                raise ConfigError(f"'data.Y.traits': {_shown(absent)} not found in column {trait!r} of data.Y.file")
            table = table[table[trait].astype(str).isin(spec["traits"])]
        try:
            Y = wide(table, id=id_column, trait=trait, value=value)
        except SlamjaxInputError as error:
            raise ConfigError(f"'data.Y.file': {error}") from None
        Y.index = pd.Index(Y.index.astype(str))
        Y.columns = [str(c) for c in Y.columns]
    Y.index.name = id_column
    if Y.shape[0] < 2:
        raise ConfigError(f"'data.Y.file': {Y.shape[0]} individual(s); fitting needs several")
    described = (f"{Path(path).name} ({spec['format']}): {Y.shape[0]} individuals x {Y.shape[1]} traits, "
                 f"{float(Y.isna().to_numpy().mean()):.1%} of cells missing")
    return Y, described


def _read_covariates(config: dict, ids: pd.Index) -> tuple[pd.DataFrame, str]:
    id_column = config["data"]["id"]
    spec = config["data"].get("covariates")
    if spec is None:
        return pd.DataFrame({id_column: ids.to_numpy()}, index=pd.Index(ids, name=id_column)), "none"
    path = spec["file"]
    table = read_table(path, "data.covariates.file", (id_column,))
    _need_column(table, id_column, "data.id", "data.covariates.file", path)
    table.index = _ids(table, id_column, "data.covariates.file")
    if spec.get("columns"):
        absent = [c for c in spec["columns"] if c not in table.columns]
        if absent:
            raise ConfigError(f"'data.covariates.columns': {_shown(absent)} not column(s) of data.covariates.file "
                              f"({Path(path).name}; columns: {_shown(table.columns)})")
        table = table[[id_column] + [c for c in spec["columns"] if c != id_column]]
    absent = ids.difference(table.index)
    if len(absent):
        raise ConfigError(f"'data.covariates.file': {len(absent)} individual(s) of Y have no row in "
                          f"{Path(path).name} (e.g. {_shown(absent)}); add them or drop them from Y")
    extra = len(table) - len(ids)
    data = table.loc[ids]
    data.index.name = id_column
    described = f"{Path(path).name}: {data.shape[1] - 1} column(s) for the {len(ids)} individuals of Y" + (
        f" ({extra} rows without traits left out)" if extra else "")
    return data, described


def _read_relmat(group: str, spec: dict, id_column: str) -> tuple[pd.DataFrame, str]:
    key = f"data.relmat.{group}"
    kind = spec["kind"]
    path = spec[kind]
    name = Path(path).name
    if kind == "matrix":
        table = read_table(path, f"{key}.matrix", first_as_text=True)
        if table.shape[1] < 2:
            raise ConfigError(f"'{key}.matrix': {name} has {table.shape[1]} column(s); expected a square matrix "
                              f"with the labels in the first column and the header")
        labels = pd.Index(table.iloc[:, 0].astype(str))
        K = _numeric(table.iloc[:, 1:], table.columns[1:], f"{key}.matrix", "column")
        K.index, K.columns = labels, pd.Index([str(c) for c in table.columns[1:]])
        if K.shape[0] != K.shape[1] or set(K.index) != set(K.columns):
            raise ConfigError(f"'{key}.matrix': {name} is {K.shape[0]} x {K.shape[1]} with row labels "
                              f"{'equal to' if set(K.index) == set(K.columns) else 'differing from'} its column "
                              f"labels; expected a square matrix labelled alike on both sides")
        if labels.has_duplicates:
            raise ConfigError(f"'{key}.matrix': labels {_shown(labels[labels.duplicated()])} appear twice")
        K = K.loc[:, list(K.index)]
        return K, f"{name}: {K.shape[0]} x {K.shape[0]} matrix"
    if kind == "markers":
        from .relationship import grm

        table = read_table(path, f"{key}.markers", (id_column,), first_as_text=True)
        label_column = id_column if id_column in table.columns else table.columns[0]
        labels = _ids(table, label_column, f"{key}.markers")
        markers = _numeric(table, [c for c in table.columns if c != label_column], f"{key}.markers", "marker")
        markers.index = labels
        if markers.shape[1] == 0:
            raise ConfigError(f"'{key}.markers': {name} has no marker column")
        try:
            K = grm(markers, coding=spec["coding"])
        except SlamjaxInputError as error:
            raise ConfigError(f"'{key}.markers': {error}") from None
        return K, f"{name}: {markers.shape[0]} individuals x {markers.shape[1]} markers, genomic relationships " \
                  f"(VanRaden 2008, coding {spec['coding']})"
    from .relationship import pedigree_relationship

    sire, dam = spec["sire"], spec["dam"]
    table = read_table(path, f"{key}.pedigree", (id_column, sire, dam))
    _need_column(table, id_column, "data.id", f"{key}.pedigree", path)
    _need_column(table, sire, f"{key}.sire", f"{key}.pedigree", path)
    _need_column(table, dam, f"{key}.dam", f"{key}.pedigree", path)
    try:
        A = pedigree_relationship(table, id=id_column, sire=sire, dam=dam)
    except SlamjaxInputError as error:
        raise ConfigError(f"'{key}.pedigree': {error}") from None
    A.index = pd.Index(A.index.astype(str))
    A.columns = pd.Index(A.columns.astype(str))
    return A, f"{name}: pedigree of {len(table)} individuals, numerator relationships of {A.shape[0]}"


def _check_formula(formula: str, data: pd.DataFrame) -> list[str]:
    """The formula's grouping variables (at least one), after building its fixed part on the
    covariates and finding every grouping variable there (pandas and formulaic only: no n x levels
    matrix)."""
    from .formula import _check_full_rank, _fixed_design, _get_column, _parse_formula

    try:
        parsed = _parse_formula(formula, "model.formula")
        for group in parsed.groups:
            column = _get_column(data, group, "model.formula", "grouping variable")
            if column.isna().any():
                raise SlamjaxInputError(f"model.formula: grouping variable {group!r} has missing values; "
                                        f"fill them in data.covariates or drop those individuals")
        x, names = _fixed_design(data, parsed.fixed, "model.formula", force_intercept=False)
        _check_full_rank(x, names, "model.formula")
    except SlamjaxInputError as error:
        message = str(error)
        message = message[len("model.formula: "):] if message.startswith("model.formula: ") else message
        raise ConfigError(f"'model.formula': {message}") from None
    if not parsed.groups:
        raise ConfigError(f"'model.formula': {formula!r} has no random term; add one, e.g. "
                          f"'+ (1|{data.index.name or 'id'})'")
    return list(parsed.groups)


def read_inputs(config: dict) -> Inputs:
    """Read and cross-check the files of a configuration whose ``data`` is a mapping."""
    id_column = config["data"]["id"]
    Y, described_Y = _read_Y(config)
    data, described_covariates = _read_covariates(config, Y.index)
    relmat, described = {}, {"data.Y": described_Y, "data.covariates": described_covariates}
    for group, spec in (config["data"].get("relmat") or {}).items():
        key = f"data.relmat.{group}"
        if group not in data.columns:
            raise ConfigError(f"'{key}': {group!r} is not the id nor a column of the covariates (columns: "
                              f"{_shown(data.columns)}); name a grouping variable of model.formula")
        K, described[key] = _read_relmat(group, spec, id_column)
        levels = pd.Index(data[group].dropna().astype(str).unique())
        absent = levels.difference(K.index)
        if len(absent):
            raise ConfigError(f"'{key}': {len(absent)} of the {len(levels)} levels of {group!r} in the data are not "
                              f"labels of the relationship matrix (e.g. {_shown(absent)}; its labels: "
                              f"{_shown(K.index)})")
        relmat[group] = K
    formula = config["model"].get("formula") or "~ 1 + " + " + ".join(f"(1|{g})" for g in (relmat or [id_column]))
    groups = _check_formula(formula, data)
    for group in relmat:
        if group not in groups:
            raise ConfigError(f"'data.relmat.{group}': {group!r} has no random term in model.formula ({formula!r}); "
                              f"add '+ (1|{group})' or drop it")
    _check_factors(config, Y)
    return Inputs(Y=Y, data=data, relmat=relmat, formula=formula, groups=groups, described=described)


def _check_factors(config: dict, Y: pd.DataFrame) -> None:
    if config["model"]["n_factors"] > Y.shape[1]:
        raise ConfigError(f"'model.n_factors' must be at most the number of traits ({Y.shape[1]}), "
                          f"got {config['model']['n_factors']}")


def dataset_inputs(config: dict):
    """The :class:`Inputs` of a bundled (``data: NAME``) or simulated (``data: {simulate: ...}``) data
    set, and the ``Dataset`` itself (for its citation): Y, its covariates and relationship matrices,
    with ``model.formula`` or the data set's default formula (``DEFAULT_FORMULAS``)."""
    from . import datasets

    data = config["data"]
    if isinstance(data, str):
        ds = datasets.load_mice(markers=False) if data == "mice" else getattr(datasets, f"load_{data}")()
        formula = config["model"].get("formula") or DEFAULT_FORMULAS[data]
    else:
        settings = data["simulate"]
        try:
            ds = datasets.simulate(**settings)
        except SlamjaxInputError as error:
            raise ConfigError(f"'data.simulate': {error}") from None
        default = "~ 1 + (1|id)" + (" + (1|group)" if settings.get("n_groups") else "")
        formula = config["model"].get("formula") or default
    groups = _check_formula(formula, ds.data)
    _check_factors(config, ds.Y)
    relmat = {group: K for group, K in ds.relmat.items() if group in groups}
    n, p = ds.Y.shape
    missing = float(ds.Y.isna().to_numpy().mean())
    described = {"data": f"{ds.name}: {n} individuals x {p} traits" + (f", {missing:.1%} of cells missing"
                                                                       if missing else "")}
    inputs = Inputs(Y=ds.Y, data=ds.data, relmat=relmat, formula=formula, groups=groups, described=described)
    return inputs, ds


def build_priors(config: dict, n_random: int):
    """``sj.Priors`` from the ``priors`` section (None: the defaults)."""
    section = config.get("priors")
    if not section:
        return None
    from . import priors as P

    kwargs = {}
    if "Lambda" in section:
        spec = dict(section["Lambda"])
        cls = {"mgps": P.MGPS, "horseshoe": P.Horseshoe, "tpb": P.TPB}[spec.pop("prior")]
        kwargs["Lambda"] = cls(**spec)
    for name in ("h2", "F_h2"):
        if name in section and section[name]["prior"] == "beta":
            from scipy.stats import beta

            density = beta(section[name]["a"], section[name]["b"]).pdf
            kwargs[name] = [density] * n_random
    for name in ("tot_Eta_var", "tot_F_var"):
        if name in section:
            kwargs[name] = P.VarianceComponent(V=section[name]["V"], nu=section[name]["nu"])
    return P.Priors(**kwargs)


def build_model(inputs: Inputs, config: dict):
    """The ``sj.Model`` of a configuration and its files."""
    from . import observation as obs
    from .model import Model

    model = config["model"]
    arguments = dict(data=inputs.data, formula=inputs.formula, relmat=inputs.relmat or None,
                     n_factors=model["n_factors"], h2_divisions=model["h2_divisions"],
                     priors=build_priors(config, len(inputs.groups)), missing=model.get("missing", "auto"))
    observation = observation_model(config)
    if observation["model"] == "voom":
        return Model(observation=_voom(inputs, observation, model["n_factors"]), **arguments)
    return Model(Y=inputs.Y, **arguments)


def _voom(inputs: Inputs, settings: dict, n_factors: int):
    """``sj.obs.Voom`` of the read counts in ``inputs.Y``, filtered as ``observation.voom`` says:
    genes with cpm > min_cpm in >= min_samples individuals, then the ``most_expressed`` of them
    (weights from the trend over every filtered gene), with the formula's fixed effects as design."""
    from . import observation as obs
    from .formula import build_design

    counts = inputs.Y
    if counts.isna().any().any() or (counts.to_numpy() < 0).any():
        raise ConfigError("'observation': voom needs complete, non-negative read counts in data.Y")
    if settings.get("min_cpm") is not None:
        counts = obs.filter_expressed(counts, min_cpm=settings["min_cpm"], min_samples=settings["min_samples"])
        if counts.shape[1] == 0:
            raise ConfigError(f"'observation.voom.min_cpm': no gene has cpm > {settings['min_cpm']:g} in "
                              f"{settings['min_samples']} individuals; lower it")
    design = build_design(inputs.data, inputs.formula).X
    voom = obs.Voom(counts, design=design)
    described = f"voom of {inputs.Y.shape[1]} genes' read counts"
    if settings.get("min_cpm") is not None:
        described += f"; {counts.shape[1]} with cpm > {settings['min_cpm']:g} in >= {settings['min_samples']} " \
                     f"individuals"
    top = settings.get("most_expressed")
    if top is not None and top < counts.shape[1]:
        keep = voom.logcpm.mean(axis=0).nlargest(top).index
        voom = obs.Voom(logcpm=voom.logcpm[keep], weights=voom.weights[keep])
        described += f"; the {top} of largest mean log-cpm fitted"
    inputs.described["observation"] = described
    if n_factors > voom.logcpm.shape[1]:
        raise ConfigError(f"'model.n_factors' must be at most the number of genes kept ({voom.logcpm.shape[1]}), "
                          f"got {n_factors}")
    return voom
