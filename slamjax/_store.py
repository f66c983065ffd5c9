"""The on-disk layout of a run (``sj.sample(..., store=path)``), and atomic writes.

    path/run.json         settings, progress counters and the slamjax version (for people; not read back)
    path/model.json       the model's constructor arguments as plain data (formula as text, settings,
                          labels, dtypes, priors by class name and fields; see ``_plain.py``)
    path/model.npz        their arrays (data, Y, X, Z, K, relmat, h2 prior weights)
    path/checkpoint.npz   chain states and running-mean sums by their pytree paths, raw chain keys,
                          and counters and settings as JSON text ("progress"), after every chunk
    path/draws.zarr       recorded draws on the standardised scale, dims (chain, draw, ...), one
                          append along ``draw`` per chunk (zarr format 3)

Nothing is unpickled: npz files are read with ``allow_pickle=False``, zarr arrays only with
numeric or fixed-length text dtypes and the usual codecs. A store written by slamjax 0.1 before
this layout (model.pkl, checkpoint.pkl) is refused rather than unpickled.

Every chunk first appends its draws, then replaces the checkpoint (write to a temporary file,
flush, fsync, rename). A process killed between the two leaves draws past the checkpoint's count:
they are cut off on opening, so a resumed run redoes that chunk exactly. At most the chunk in
flight, or being written, is lost: the disk is written on a background thread
(``BackgroundWriter``) while the device computes the next chunk.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import warnings
import zipfile
import zlib
from pathlib import Path

import jax
import numpy as np

from ._errors import SlamjaxInputError

__all__ = ["BackgroundWriter", "RunStore"]


def _atomic_write(path: Path, payload: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _dims(name: str, value: np.ndarray) -> tuple[str, ...]:
    return ("chain", "draw") + tuple(f"{name}_{i}" for i in range(value.ndim - 2))


MODEL_JSON, MODEL_ARRAYS, CHECKPOINT, RUN_JSON = "model.json", "model.npz", "checkpoint.npz", "run.json"
_PICKLED = ("model.pkl", "checkpoint.pkl")  # the layout before plain data; never read
_CODECS = {"bytes", "zstd", "gzip", "blosc", "crc32c", "transpose"}  # zarr codecs that hold no code
_DRAW_KINDS = "biufcU"  # numbers, booleans and fixed-length text (coordinates)


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


class BackgroundWriter:
    """Runs writes in order on one background thread, so that the device never waits for the disk.

    ``submit(fn, *args)`` first waits for the write before it, then starts this one, so one write
    runs while the device computes the next chunk, and a process killed at any moment loses at
    most the chunk being written (``open_run`` goes on from the checkpoint before it). ``wait()``
    finishes it. A write that failed raises its error from the next ``submit`` or ``wait``.
    """

    def __init__(self):
        from concurrent.futures import ThreadPoolExecutor

        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slamjax-store")
        self._pending = []

    def submit(self, fn, *args) -> None:
        self.wait()
        self._pending.append(self._executor.submit(fn, *args))

    def wait(self) -> None:
        try:
            while self._pending:
                self._pending.pop(0).result()
        finally:
            self._pending.clear()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._executor.shutdown(wait=True)


class RunStore:
    """Reads and writes one run directory."""

    def __init__(self, path):
        self.path = Path(path)

    @property
    def draws_path(self) -> Path:
        return self.path / "draws.zarr"

    def exists(self) -> bool:
        """A checkpoint is there (or a pickled one of the old layout)."""
        return any((self.path / name).exists() for name in (CHECKPOINT, *_PICKLED))

    def fail(self, name: str, problem: str):
        raise SlamjaxInputError(f"open_run: {self.path / name}: {problem}")

    def create(self, model_tree: dict, model_arrays: dict[str, np.ndarray], meta: dict) -> None:
        """Writes the model (``_plain.model_to_plain``) and run.json into a new run directory."""
        if self.exists():
            raise SlamjaxInputError(
                f"store: {self.path} already holds a run; open it with sj.open_run(path) and resume, "
                "or choose another path"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.path / MODEL_ARRAYS, _npz_bytes(model_arrays))
        _atomic_write(self.path / MODEL_JSON, json.dumps(model_tree, indent=1).encode())
        _atomic_write(self.path / RUN_JSON, json.dumps(meta, indent=2).encode())

    def append_draws(self, draws: dict[str, np.ndarray], first: bool, dims: dict | None = None,
                     coords: dict | None = None) -> None:
        """Appends one chunk along ``draw``. ``dims``: named dims (after chain, draw) per variable,
        ``coords``: their labels, written with the first chunk (other variables get ``name_i``)."""
        import xarray as xr
        import zarr

        dims = dict(dims or {})
        if not first:  # appends keep the dims the store was created with
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                group = zarr.open_group(self.draws_path, mode="r")
                for name in draws:
                    if name in group:
                        dims[name] = tuple(group[name].metadata.dimension_names or ())[2:]
        dataset = xr.Dataset({
            name: (("chain", "draw", *dims[name]) if name in dims else _dims(name, value), value)
            for name, value in draws.items()
        })
        if first and coords:
            dataset = dataset.assign_coords({d: list(c) for d, c in coords.items() if d in dataset.dims})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if first:
                dataset.to_zarr(self.draws_path, mode="w", consolidated=False, zarr_format=3)
            else:
                dataset.to_zarr(self.draws_path, append_dim="draw", consolidated=False, zarr_format=3)

    def write_checkpoint(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        """Replaces the checkpoint (``_plain.checkpoint_to_plain``) atomically, then run.json."""
        _atomic_write(self.path / CHECKPOINT, _npz_bytes(arrays))
        _atomic_write(self.path / RUN_JSON, json.dumps(meta, indent=2).encode())

    def _check_is_run(self) -> None:
        if (self.path / CHECKPOINT).exists():
            return
        pickled = [name for name in _PICKLED if (self.path / name).exists()]
        if pickled:
            raise SlamjaxInputError(
                f"open_run: {self.path} holds a run in the old layout ({', '.join(pickled)}); slamjax no longer "
                "reads pickle files, since opening one can run any code: rerun the sampler with this version"
            )
        raise SlamjaxInputError(f"open_run: {self.path} holds no slamjax run (no {CHECKPOINT})")

    def _read_json(self, name: str):
        try:
            return json.loads((self.path / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            self.fail(name, "missing; the store is incomplete")
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            self.fail(name, f"not valid JSON ({error}); the store was damaged or edited by hand")

    def _read_arrays(self, name: str) -> dict[str, np.ndarray]:
        """The arrays of an npz file, read without unpickling anything."""
        file = self.path / name
        if not file.exists():
            self.fail(name, "missing; the store is incomplete")
        try:
            loaded = np.load(file, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                self.fail(name, "not an npz archive")
            with loaded:
                return {key: loaded[key] for key in loaded.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
            self.fail(name, f"cannot be read as an npz archive of plain arrays ({error}); the store was "
                            "damaged or replaced")

    def read_model(self) -> tuple[object, dict[str, np.ndarray]]:
        """(tree, arrays) of the model's constructor arguments, as ``_plain.model_to_plain`` wrote them."""
        self._check_is_run()
        return self._read_json(MODEL_JSON), self._read_arrays(MODEL_ARRAYS)

    def read_checkpoint(self) -> dict[str, np.ndarray]:
        self._check_is_run()
        return self._read_arrays(CHECKPOINT)

    def _open_draws(self):
        """The draws group, after checking that every array has a plain dtype and known codecs."""
        import zarr

        name = self.draws_path.name
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                group = zarr.open_group(self.draws_path, mode="r+", zarr_format=3)
                arrays = dict(group.arrays())
                groups = list(group.group_keys())
        except (OSError, ValueError, KeyError, TypeError) as error:
            self.fail(name, f"not a zarr (format 3) group of arrays ({type(error).__name__}: {error})")
        if groups:
            self.fail(name, f"holds groups {groups}; a run's draws are arrays only")
        for key, array in arrays.items():
            codecs = {codec.to_dict()["name"] for codec in array.metadata.codecs}
            if not codecs <= _CODECS or array.dtype.kind not in _DRAW_KINDS:
                self.fail(name, f"the array {key!r} has dtype {array.dtype} and codecs {sorted(codecs)}; a run's "
                                f"draws have numeric dtypes and the codecs {sorted(_CODECS)}")
        return arrays

    def read_draws(self, n_draws: int, num_chains: int, expected: dict) -> dict[str, np.ndarray]:
        """The first ``n_draws`` draws; later ones (a chunk written after the last checkpoint) are
        cut off the store, so that appends continue from the checkpoint. ``expected``: {name:
        ShapeDtypeStruct of one draw}; every variable is checked against it."""
        if n_draws == 0:  # draws written after the last checkpoint only
            if self.draws_path.exists():
                shutil.rmtree(self.draws_path)
            return {}
        name = self.draws_path.name
        if not self.draws_path.exists():
            self.fail(name, f"missing, but the checkpoint counts {n_draws} draws")
        arrays = self._open_draws()
        variables = {key: array for key, array in arrays.items()
                     if tuple(array.metadata.dimension_names or ())[:2] == ("chain", "draw")}
        if set(variables) != set(expected):
            self.fail(name, f"holds the variables {sorted(variables)}; the run records {sorted(expected)}")
        for key, array in variables.items():
            want = (num_chains, n_draws, *expected[key].shape)
            if array.shape[0] != num_chains or array.shape[1] < n_draws or array.shape[2:] != want[2:]:
                self.fail(name, f"{key!r} has shape {array.shape}; the checkpoint needs {want}")
        import xarray as xr

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for array in variables.values():
                if array.shape[1] > n_draws:
                    array.resize((array.shape[0], n_draws, *array.shape[2:]))
            dataset = xr.open_zarr(self.draws_path, consolidated=False, zarr_format=3).load()
        draws = {key: np.asarray(dataset[key].values) for key in variables}
        for key, value in draws.items():
            if jax.dtypes.canonicalize_dtype(value.dtype) != expected[key].dtype:
                self.fail(name, f"{key!r} has dtype {value.dtype}; the run records {expected[key].dtype}")
        return draws
