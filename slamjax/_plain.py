"""Python objects as plain data, and back, for the run store: nothing here reads or runs code.

A value becomes a JSON-able tree whose numeric and text arrays sit beside it in a dict
{key: ndarray} (an ``.npz`` file on disk, ``_store.py``). Scalars, None and strings are JSON
values; everything else is a one-key object naming its kind:

    {"$array": key}                     an ndarray (numbers, booleans, dates or fixed-length text)
    {"$list": [...]}, {"$tuple": [...]} {"$dict": {name: ...}}
    {"$frame": {index, columns, data}}  a DataFrame: two "$index" nodes and one "$column" per column
    {"$series": {index, name, values}}, {"$index": {name, values}}
    {"$column": {kind, dtype, ...}}     the values of one column or index: kind "numpy" (values),
                                        "strings" (values, missing), "masked" (pandas nullable
                                        numbers: values, missing), "categorical" (codes,
                                        categories: a "$column", ordered) or "labels" (an index
                                        of mixed names, as a JSON list)
    {"$priors": {...}}                  ``sj.Priors``: coefficient priors by class name (ARD, MGPS,
                                        Horseshoe, TPB) with their fields, h2 weights as arrays
    {"$observation": {class, arguments}} a built-in observation model (``observation.BUILT_IN``) by
                                        class name and its constructor's arguments (a "$dict")

The model's tree is {"format": FORMAT, "slamjax": version, "arguments": {name: node}}; a
checkpoint holds its counters and settings as JSON text under "progress", with the format.

Reading checks every node's kind and keys, that each array is referenced once and has a plain
dtype, and builds only the classes above: a file cannot make it import or call anything else.
Chain states and other pytrees are stored leaf by leaf under their paths ("states.Lambda_prior.phi")
and rebuilt on a template taken from the model, checking each leaf's name, shape and dtype.
"""

from __future__ import annotations

import dataclasses
import json
import warnings

import jax
import numpy as np
import pandas as pd

from ._errors import SlamjaxInputError
from .grid import h2_weights
from .observation._base import ObservationModel
from .priors import ARD, MGPS, TPB, Horseshoe, Priors, VarianceComponent

__all__ = [
    "FORMAT",
    "checkpoint_from_plain",
    "checkpoint_progress",
    "checkpoint_to_plain",
    "model_arguments_from_plain",
    "model_to_plain",
]

FORMAT = 1  # the store layout; a store with another number is refused
PRIOR_CLASSES = {cls.__name__: cls for cls in (ARD, MGPS, Horseshoe, TPB)}
_STRING_DTYPES = ("object", "str", "string")
_MASKED_DTYPES = ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float32", "Float64",
                  "boolean")
_ARRAY_KINDS = "biufcmMU"  # numbers, booleans, times and fixed-length text: never Python objects




def observation_classes() -> dict[str, type]:
    """The built-in observation models a store may name, by class name."""
    from . import observation

    return {name: getattr(observation, name) for name in observation.BUILT_IN}


# ----------------------------------------------------------------------------- writing


def _scalar(value):
    """A Python scalar for a JSON value, or None when ``value`` is not one."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.bool_, np.integer, np.floating, np.str_)):
        return value.item()
    return None


def _is_scalar(value) -> bool:
    return value is None or _scalar(value) is not None


def _plain_array(value, key: str) -> np.ndarray:
    """An ndarray of a plain dtype; object arrays of numbers become float64 (NaN for missing)."""
    array = np.asarray(value)
    if array.dtype.kind == "O":
        try:
            array = np.array([np.nan if v is None else float(v) for v in array.ravel()]).reshape(array.shape)
        except (TypeError, ValueError):
            raise SlamjaxInputError(
                f"store: {key} is an array of Python objects; a run store keeps numbers, booleans and "
                "text only: convert it (e.g. np.asarray(x, dtype=float))"
            ) from None
    if array.dtype.kind not in _ARRAY_KINDS:
        raise SlamjaxInputError(f"store: {key} has dtype {array.dtype}, which a run store cannot keep")
    return array


def _column_to_plain(values: pd.Series | pd.Index, key: str, arrays: dict) -> dict:
    """One column (or index) of labels or values: a "$column" node."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        arrays[f"{key}.codes"] = np.asarray(pd.Categorical(values).codes)
        categories = _column_to_plain(dtype.categories, f"{key}.categories", arrays)
        return {"$column": {"kind": "categorical", "dtype": "category", "codes": f"{key}.codes",
                            "categories": categories, "ordered": bool(dtype.ordered)}}
    if str(dtype) in _MASKED_DTYPES:
        arrays[f"{key}.values"] = values.to_numpy(dtype=dtype.numpy_dtype, na_value=0)
        arrays[f"{key}.missing"] = np.asarray(pd.isna(values))
        return {"$column": {"kind": "masked", "dtype": str(dtype), "values": f"{key}.values",
                            "missing": f"{key}.missing"}}
    if str(dtype) in _STRING_DTYPES:
        items = list(values)
        missing = np.array([v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) for v in items],
                           dtype=bool)
        if not all(isinstance(v, str) for v, m in zip(items, missing) if not m):
            example = next(v for v, m in zip(items, missing) if not m and not isinstance(v, str))
            raise SlamjaxInputError(
                f"store: {key} holds Python objects (e.g. {example!r}); a run store keeps columns of numbers, "
                "booleans, strings and categoricals: convert it (astype(float), astype(str) or astype('category'))"
            )
        arrays[f"{key}.values"] = np.array(["" if m else v for v, m in zip(items, missing)], dtype=str)
        arrays[f"{key}.missing"] = missing
        return {"$column": {"kind": "strings", "dtype": str(dtype), "values": f"{key}.values",
                            "missing": f"{key}.missing"}}
    if isinstance(dtype, np.dtype) and dtype.kind in _ARRAY_KINDS:
        arrays[f"{key}.values"] = np.asarray(values)
        return {"$column": {"kind": "numpy", "dtype": str(dtype), "values": f"{key}.values"}}
    raise SlamjaxInputError(
        f"store: {key} has dtype {dtype}; a run store keeps columns of numbers, booleans, strings and "
        "categoricals: convert it"
    )


def _label(value, key: str):
    """A row, column or index name: a JSON scalar."""
    if not _is_scalar(value):
        raise SlamjaxInputError(f"store: {key} is named {value!r}; a run store keeps names that are strings or numbers")
    return _scalar(value)


def _index_to_plain(index: pd.Index, key: str, arrays: dict) -> dict:
    if isinstance(index, pd.MultiIndex):
        raise SlamjaxInputError(f"store: {key} is a MultiIndex; flatten it to single names")
    name = _label(index.name, f"the name of {key}")
    if index.dtype == object and not all(isinstance(label, str) for label in index):
        labels = [_label(label, f"a label of {key}") for label in index]  # mixed names: JSON values
        return {"$index": {"name": name, "values": {"$column": {"kind": "labels", "dtype": "object",
                                                                "values": labels}}}}
    return {"$index": {"name": name, "values": _column_to_plain(index, key, arrays)}}


def to_plain(value, key: str, arrays: dict):
    """The plain node of ``value``; its arrays go into ``arrays`` under keys starting with ``key``."""
    if _is_scalar(value):
        return _scalar(value)
    if isinstance(value, pd.DataFrame):
        return {"$frame": {
            "index": _index_to_plain(value.index, f"{key}.index", arrays),
            "columns": _index_to_plain(value.columns, f"{key}.columns", arrays),
            "data": [_column_to_plain(value.iloc[:, j], f"{key}.column{j}", arrays)
                     for j in range(value.shape[1])],
        }}
    if isinstance(value, pd.Series):
        return {"$series": {"index": _index_to_plain(value.index, f"{key}.index", arrays),
                            "name": _label(value.name, f"the name of {key}"),
                            "values": _column_to_plain(value, f"{key}.values", arrays)}}
    if isinstance(value, pd.Index):
        return _index_to_plain(value, key, arrays)
    if isinstance(value, (np.ndarray, jax.Array)):
        arrays[key] = _plain_array(value, key)
        return {"$array": key}
    if type(value).__name__ in marker_classes() and marker_classes()[type(value).__name__] is type(value):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {"$marker": {"class": type(value).__name__, "fields": to_plain(fields, key, arrays)}}
    if isinstance(value, ObservationModel):
        name = type(value).__name__
        if observation_classes().get(name) is not type(value):
            value.constructor_arguments()  # a custom model: raises, saying what to do
            raise SlamjaxInputError(f"store: {key} is a {name}, which is not a built-in observation model")
        return {"$observation": {"class": name, "arguments": to_plain(value.constructor_arguments(), key, arrays)}}
    if isinstance(value, (list, tuple)):
        items = [to_plain(v, f"{key}.{i}", arrays) for i, v in enumerate(value)]
        return {"$list" if isinstance(value, list) else "$tuple": items}
    if isinstance(value, dict):
        if not all(isinstance(name, str) for name in value):
            raise SlamjaxInputError(f"store: {key} is a dict whose keys are not all strings")
        return {"$dict": {name: to_plain(v, f"{key}.{name}", arrays) for name, v in value.items()}}
    raise SlamjaxInputError(
        f"store: {key} is a {type(value).__name__}, which a run store cannot keep; pass arrays, DataFrames, "
        "numbers or strings"
    )


def _number(value, key: str) -> int | float:
    """A real number (int or float, from a Python, NumPy or JAX scalar) for JSON."""
    item = np.asarray(value).item() if np.ndim(value) == 0 else None
    if not _is_number(item) or isinstance(value, np.bool_):
        raise SlamjaxInputError(f"store: {key} must be a number to be stored, got {value!r}")
    return item


def _prior_to_plain(prior, key: str) -> dict:
    """A coefficient prior of a known class: its class name and number fields."""
    name = type(prior).__name__
    if PRIOR_CLASSES.get(name) is not type(prior):
        raise SlamjaxInputError(
            f"store: {key} is a {name}; a run store keeps the priors {sorted(PRIOR_CLASSES)} only "
            "(run without store=, or use one of them)"
        )
    fields = {f.name: _number(getattr(prior, f.name), f"{key}.{f.name}") for f in dataclasses.fields(prior)}
    return {"class": name, "fields": fields}


def priors_to_plain(priors: Priors, grid: np.ndarray, key: str, arrays: dict) -> dict:
    """A "$priors" node; h2 and F_h2 weights (arrays, functions) are evaluated over ``grid``."""
    node = {}
    for field in dataclasses.fields(priors):
        value = getattr(priors, field.name)
        if isinstance(value, VarianceComponent):
            node[field.name] = {name: _number(getattr(value, name), f"{key}.{field.name}.{name}")
                                for name in ("V", "nu")}
        elif field.name in ("Lambda", "B", "B_F"):
            node[field.name] = _prior_to_plain(value, f"{key}.{field.name}")
        elif field.name in ("h2", "F_h2"):
            if value is None:
                node[field.name] = None
            else:
                arrays[f"{key}.{field.name}"] = h2_weights(grid, value)
                node[field.name] = {"$array": f"{key}.{field.name}"}
        else:
            node[field.name] = _number(value, f"{key}.{field.name}")
    return {"$priors": node}


def marker_classes() -> dict:
    """The marker classes a store keeps: ``Markers`` and the marker priors, by name."""
    from .markers import ARD, BayesC, BayesianLasso, BayesR, Horseshoe, Markers

    return {cls.__name__: cls for cls in (Markers, ARD, Horseshoe, BayesianLasso, BayesC, BayesR)}


def model_to_plain(model) -> tuple[dict, dict[str, np.ndarray]]:
    """(tree, arrays) of the model's constructor arguments; raises naming what cannot be kept."""
    from . import __version__

    arrays: dict[str, np.ndarray] = {}
    tree = {}
    for name, value in model.constructor_arguments().items():
        if isinstance(value, Priors):
            tree[name] = priors_to_plain(value, model.grid, name, arrays)
        else:
            tree[name] = to_plain(value, name, arrays)
    return {"format": FORMAT, "slamjax": __version__, "arguments": tree}, arrays


def checkpoint_to_plain(states, chain_keys, accumulators, progress: dict) -> dict[str, np.ndarray]:
    """The arrays of a checkpoint: chain states, raw chain keys and running-mean sums by their
    pytree paths, and ``progress`` (counters and settings) as JSON text under "progress"."""
    arrays = {"progress": np.array(json.dumps({"format": FORMAT, **progress}))}
    arrays["chain_keys"] = np.asarray(jax.random.key_data(chain_keys))
    for prefix, tree in (("states", states), ("accumulators", accumulators)):
        for path, leaf in jax.tree_util.tree_flatten_with_path(jax.device_get(tree))[0]:
            arrays[_leaf_key(prefix, path)] = np.asarray(leaf)
    return arrays


def _leaf_key(prefix: str, path) -> str:
    return f"{prefix}.{jax.tree_util.keystr(path, simple=True, separator='.')}"


# ----------------------------------------------------------------------------- reading


class _Reader:
    """Rebuilds values from a tree and its arrays, checking as it goes; ``where`` names the file."""

    def __init__(self, arrays: dict[str, np.ndarray], where: str):
        self.arrays, self.where, self.used = arrays, where, set()

    def fail(self, problem: str):
        raise SlamjaxInputError(
            f"open_run: {self.where}: {problem}; the store was damaged or edited by hand (rerun the sampler "
            "into a new store)"
        )

    def fields(self, node, tag: str, keys: set[str], key: str) -> dict:
        body = node[tag]
        if not isinstance(body, dict) or set(body) != keys:
            self.fail(f"{key} ({tag}) must have the keys {sorted(keys)}, has {_keys(body)}")
        return body

    def array(self, name, key: str, kinds: str = _ARRAY_KINDS) -> np.ndarray:
        if not isinstance(name, str) or name not in self.arrays:
            self.fail(f"{key} refers to an array {name!r} that is not in the file")
        if name in self.used:
            self.fail(f"the array {name!r} is referred to twice")
        self.used.add(name)
        array = self.arrays[name]
        if array.dtype.kind not in kinds:
            self.fail(f"the array {name!r} has dtype {array.dtype}, expected one of the kinds {kinds!r}")
        return array

    def check_all_used(self) -> None:
        unknown = sorted(set(self.arrays) - self.used)
        if unknown:
            self.fail(f"unknown arrays {unknown[:5]}")

    def value(self, node, key: str):
        """The Python value of one node."""
        if _is_json_scalar(node):
            return node
        if not isinstance(node, dict) or len(node) != 1:
            self.fail(f"{key} is not a stored value: {str(node)[:80]!r}")
        tag = next(iter(node))
        if tag == "$array":
            return self.array(node[tag], key)
        if tag in ("$list", "$tuple"):
            if not isinstance(node[tag], list):
                self.fail(f"{key} ({tag}) must hold a list")
            items = [self.value(v, f"{key}.{i}") for i, v in enumerate(node[tag])]
            return items if tag == "$list" else tuple(items)
        if tag == "$dict":
            if not isinstance(node[tag], dict):
                self.fail(f"{key} ($dict) must hold an object")
            return {name: self.value(v, f"{key}.{name}") for name, v in node[tag].items()}
        if tag == "$frame":
            return self.frame(node, key)
        if tag == "$series":
            body = self.fields(node, tag, {"index", "name", "values"}, key)
            values = self.column(body["values"], f"{key}.values")
            index = self.index(body["index"], f"{key}.index")
            if len(index) != len(values):
                self.fail(f"{key} has {len(values)} values but {len(index)} index labels")
            return pd.Series(values, index=index, name=self.label(body["name"], key), dtype=_kept_dtype(values))
        if tag == "$index":
            return self.index(node, key)
        if tag == "$priors":
            return self.priors(node, key)
        if tag == "$marker":
            return self.built(node, tag, "fields", marker_classes(), key)
        if tag == "$observation":
            return self.built(node, tag, "arguments", observation_classes(), key)
        self.fail(f"{key} has the unknown kind {tag!r}")

    def built(self, node, tag: str, part: str, classes: dict, key: str):
        """An object of a known class from its stored class name and keyword arguments."""
        body = self.fields(node, tag, {"class", part}, key)
        cls = classes.get(body["class"]) if isinstance(body["class"], str) else None
        if cls is None:
            self.fail(f"{key}: unknown class {body['class']!r} for {tag} (known: {sorted(classes)})")
        arguments = self.value(body[part], key)
        if not isinstance(arguments, dict):
            self.fail(f"{key}: the {part} of {body['class']} must be a $dict")
        try:
            return cls(**arguments)
        except (TypeError, ValueError) as error:
            self.fail(f"{key}: its stored {part} do not build a {body['class']}: {error}")

    def label(self, node, key: str):
        if not _is_json_scalar(node):
            self.fail(f"{key}: a name must be a string or a number, got {str(node)[:80]!r}")
        return node

    def index(self, node, key: str) -> pd.Index:
        if not isinstance(node, dict) or set(node) != {"$index"}:
            self.fail(f"{key} must be an $index")
        body = self.fields(node, "$index", {"name", "values"}, key)
        values = self.column(body["values"], key)
        return pd.Index(values, name=self.label(body["name"], key), dtype=_kept_dtype(values))

    def frame(self, node, key: str) -> pd.DataFrame:
        body = self.fields(node, "$frame", {"index", "columns", "data"}, key)
        index = self.index(body["index"], f"{key}.index")
        columns = self.index(body["columns"], f"{key}.columns")
        if not isinstance(body["data"], list) or len(body["data"]) != len(columns):
            self.fail(f"{key} names {len(columns)} columns but holds data for a different number")
        data = [self.column(c, f"{key}.column{j}") for j, c in enumerate(body["data"])]
        if any(len(values) != len(index) for values in data):
            self.fail(f"{key}: a column's length differs from the {len(index)} rows of its index")
        frame = pd.DataFrame({j: pd.Series(values, dtype=_kept_dtype(values)) for j, values in enumerate(data)})
        if not data:
            frame = pd.DataFrame(index=range(len(index)))
        frame.index, frame.columns = index, columns
        return frame

    def column(self, node, key: str):
        """The values of a "$column" node: an ndarray or a pandas array."""
        if not isinstance(node, dict) or set(node) != {"$column"} or not isinstance(node["$column"], dict):
            self.fail(f"{key} must be a $column")
        kind = node["$column"].get("kind")
        keys = {"numpy": {"kind", "dtype", "values"}, "labels": {"kind", "dtype", "values"},
                "strings": {"kind", "dtype", "values", "missing"},
                "masked": {"kind", "dtype", "values", "missing"},
                "categorical": {"kind", "dtype", "codes", "categories", "ordered"}}
        if kind not in keys:
            self.fail(f"{key} has the unknown column kind {kind!r}")
        body = self.fields(node, "$column", keys[kind], key)
        if kind == "categorical":
            codes = self.array(body["codes"], key, kinds="iu")
            categories = self.column(body["categories"], f"{key}.categories")
            if codes.ndim != 1 or (codes.size and (codes.min() < -1 or codes.max() >= len(categories))):
                self.fail(f"{key}: category codes out of range")
            if not isinstance(body["ordered"], bool) or pd.Index(categories).has_duplicates:
                self.fail(f"{key}: categories must be distinct and 'ordered' true or false")
            return pd.Categorical.from_codes(codes, categories=pd.Index(categories), ordered=body["ordered"])
        if kind == "labels":
            if body["dtype"] != "object" or not isinstance(body["values"], list) or not all(
                map(_is_json_scalar, body["values"])
            ):
                self.fail(f"{key}: labels must be a list of strings and numbers")
            labels = np.empty(len(body["values"]), dtype=object)
            labels[:] = body["values"]
            return labels
        values = self.array(body["values"], key)
        if values.ndim != 1:
            self.fail(f"{key}: the values must be one-dimensional, have shape {values.shape}")
        if kind == "numpy":
            if body["dtype"] != str(values.dtype):
                self.fail(f"{key}: dtype {body['dtype']!r} but the array holds {values.dtype}")
            return values
        missing = self.array(body["missing"], key, kinds="b")
        if missing.shape != values.shape:
            self.fail(f"{key}: the missing-value mask has shape {missing.shape}, the values {values.shape}")
        objects = values.astype(object)
        objects[missing] = np.nan if kind == "strings" else None  # NaN: what pandas puts in object columns
        if kind == "strings":
            if body["dtype"] not in _STRING_DTYPES or values.dtype.kind != "U":
                self.fail(f"{key}: a string column needs text values and a dtype in {_STRING_DTYPES}")
            return objects if body["dtype"] == "object" else pd.array(objects, dtype=body["dtype"])
        if body["dtype"] not in _MASKED_DTYPES or values.dtype.kind not in "biuf":
            self.fail(f"{key}: a nullable column needs numbers and a dtype in {_MASKED_DTYPES}")
        return pd.array(objects, dtype=body["dtype"])

    def priors(self, node, key: str) -> Priors:
        names = {field.name for field in dataclasses.fields(Priors)}
        body = self.fields(node, "$priors", names, key)
        values = {}
        for name in names:
            item, item_key = body[name], f"{key}.{name}"
            if name in ("tot_Eta_var", "tot_F_var"):
                if not isinstance(item, dict) or set(item) != {"V", "nu"} or not all(map(_is_number, item.values())):
                    self.fail(f"{item_key} must be {{'V': number, 'nu': number}}")
                values[name] = self.checked(VarianceComponent, item, item_key)
            elif name in ("Lambda", "B", "B_F"):
                values[name] = self.coefficient_prior(item, item_key)
            elif name in ("h2", "F_h2"):
                values[name] = None if item is None else self.weights(item, item_key)
            elif not _is_number(item):
                self.fail(f"{item_key} must be a number, got {str(item)[:80]!r}")
            else:
                values[name] = item
        return self.checked(Priors, values, key)

    def weights(self, node, key: str) -> np.ndarray:
        """h2 weights over the grid: a one-dimensional float array."""
        if not isinstance(node, dict) or set(node) != {"$array"}:
            self.fail(f"{key} must be null or an array of weights")
        weights = self.array(node["$array"], key, kinds="f")
        if weights.ndim != 1:
            self.fail(f"{key}: the weights must be one-dimensional, have shape {weights.shape}")
        return weights

    def checked(self, cls, fields: dict, key: str):
        """``cls(**fields)``, its own checks reported against the file."""
        try:
            return cls(**fields)
        except SlamjaxInputError as error:
            self.fail(f"{key}: {error}")

    def coefficient_prior(self, node, key: str):
        """A prior of a known class (by name, from PRIOR_CLASSES) with number fields."""
        if not isinstance(node, dict) or set(node) != {"class", "fields"} or node["class"] not in PRIOR_CLASSES:
            self.fail(f"{key} must be {{'class': one of {sorted(PRIOR_CLASSES)}, 'fields': {{...}}}}")
        cls = PRIOR_CLASSES[node["class"]]
        names = {field.name for field in dataclasses.fields(cls)}
        fields = node["fields"]
        if not isinstance(fields, dict) or set(fields) != names or not all(map(_is_number, fields.values())):
            self.fail(f"{key}: {node['class']} needs the number fields {sorted(names)}, got {_keys(fields)}")
        return self.checked(cls, fields, key)


def _kept_dtype(values):
    """object for object arrays (which pandas would otherwise turn into strings), else None."""
    return object if isinstance(values, np.ndarray) and values.dtype == object else None


def _is_json_scalar(node) -> bool:
    return node is None or isinstance(node, (bool, int, float, str))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _keys(body) -> list:
    return sorted(body) if isinstance(body, dict) else [type(body).__name__]


#: Model arguments added after stores were first written, with the value that gives an older store
#: its own sweep (observation models; step 0e's rescaling move; step 0o, whose default is "auto")
ARGUMENTS_ADDED = dict(observation=None, rescale_factors=False, swap_factors=False)


def model_arguments_from_plain(tree, arrays: dict[str, np.ndarray], names: set[str], where: str) -> dict:
    """The constructor arguments written by ``model_to_plain``; ``names``: those the model takes."""
    from . import __version__

    reader = _Reader(arrays, where)
    if not isinstance(tree, dict) or set(tree) != {"format", "slamjax", "arguments"}:
        reader.fail(f"expected the keys ['arguments', 'format', 'slamjax'], found {_keys(tree)}")
    check_format(tree["format"], where)
    if tree["slamjax"] != __version__:
        warnings.warn(
            f"open_run: {where} was written by slamjax {tree['slamjax']!r}, this is {__version__}: a resumed run "
            "may not repeat the draws of an uninterrupted run bit for bit", stacklevel=3,
        )
    arguments = tree["arguments"]
    if isinstance(arguments, dict):  # written before these arguments existed: the sweep it was sampled with
        arguments = {**{name: value for name, value in ARGUMENTS_ADDED.items() if name in names}, **arguments}
    if not isinstance(arguments, dict) or set(arguments) != names:
        found = _keys(arguments)
        reader.fail(f"the model arguments must be {sorted(names)}, found {found}")
    values = {name: reader.value(node, name) for name, node in arguments.items()}
    reader.check_all_used()
    return values


def check_format(number, where: str) -> None:
    if number != FORMAT:
        raise SlamjaxInputError(
            f"open_run: {where} has store format {number!r}; this slamjax reads format {FORMAT} "
            "(open it with the slamjax version that wrote it)"
        )


def checkpoint_progress(arrays: dict[str, np.ndarray], where: str) -> dict:
    """The counters and settings of a checkpoint (the JSON text under "progress")."""
    text = arrays.get("progress")
    if text is None or text.dtype.kind != "U" or text.shape != ():
        _Reader(arrays, where).fail("'progress' must be a JSON text")
    try:
        progress = json.loads(str(text[()]))
    except json.JSONDecodeError as error:
        _Reader(arrays, where).fail(f"'progress' is not valid JSON ({error})")
    if not isinstance(progress, dict):
        _Reader(arrays, where).fail("'progress' must be a JSON object")
    check_format(progress.pop("format", None), where)
    return progress


def checkpoint_from_plain(arrays: dict[str, np.ndarray], template: dict, where: str) -> dict:
    """{"states", "chain_keys", "accumulators"}: the arrays of a checkpoint on the structure of
    ``template`` (the same keys, ShapeDtypeStruct leaves), each leaf's name, shape and dtype checked."""
    reader = _Reader(arrays, where)
    reader.used.add("progress")
    trees = {}
    for prefix, structure in template.items():
        leaves = []
        paths, treedef = jax.tree_util.tree_flatten_with_path(structure)
        for path, expected in paths:
            key = prefix if not path else _leaf_key(prefix, path)
            if key not in arrays:
                reader.fail(f"the array {key!r} is missing")
            value = reader.array(key, key)
            if value.shape != expected.shape or jax.dtypes.canonicalize_dtype(value.dtype) != expected.dtype:
                reader.fail(
                    f"{key!r} has shape {value.shape} and dtype {value.dtype}; the model needs "
                    f"{expected.shape} and {expected.dtype}"
                )
            leaves.append(value)
        trees[prefix] = jax.tree_util.tree_unflatten(treedef, leaves)
    reader.check_all_used()
    return trees
