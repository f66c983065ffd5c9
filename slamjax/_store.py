"""The on-disk layout of a run (``sj.sample(..., store=path)``), and atomic writes.

    path/run.json         settings, progress counters and the slamjax version (human readable)
    path/model.pkl        the model's constructor arguments (the model is rebuilt on opening)
    path/checkpoint.pkl   chain states, chain keys, running-mean sums and counters, after every chunk
    path/draws.zarr       recorded draws on the standardised scale, dims (chain, draw, ...), one
                          append along ``draw`` per chunk

Every chunk first appends its draws, then replaces the checkpoint (write to a temporary file,
flush, fsync, rename). A process killed between the two leaves draws past the checkpoint's count:
they are cut off on opening, so a resumed run redoes that chunk exactly. At most the chunk in
flight is lost.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import warnings
from pathlib import Path

import numpy as np

from ._errors import SlamjaxInputError

__all__ = ["RunStore"]


def _atomic_write(path: Path, payload: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _dims(name: str, value: np.ndarray) -> tuple[str, ...]:
    return ("chain", "draw") + tuple(f"{name}_{i}" for i in range(value.ndim - 2))


class RunStore:
    """Reads and writes one run directory."""

    def __init__(self, path):
        self.path = Path(path)

    @property
    def draws_path(self) -> Path:
        return self.path / "draws.zarr"

    def exists(self) -> bool:
        return (self.path / "checkpoint.pkl").exists()

    def create(self, model_arguments: dict, meta: dict) -> None:
        if self.exists():
            raise SlamjaxInputError(
                f"store: {self.path} already holds a run; open it with sj.open_run(path) and resume, "
                "or choose another path"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.path / "model.pkl", pickle.dumps(model_arguments))
        _atomic_write(self.path / "run.json", json.dumps(meta, indent=2).encode())

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
                dataset.to_zarr(self.draws_path, mode="w", consolidated=False)
            else:
                dataset.to_zarr(self.draws_path, append_dim="draw", consolidated=False)

    def write_checkpoint(self, checkpoint: dict, meta: dict) -> None:
        _atomic_write(self.path / "checkpoint.pkl", pickle.dumps(checkpoint))
        _atomic_write(self.path / "run.json", json.dumps(meta, indent=2).encode())

    def read(self) -> tuple[dict, dict, dict]:
        """(model arguments, checkpoint, meta)."""
        if not self.exists():
            raise SlamjaxInputError(f"open_run: {self.path} holds no slamjax run (no checkpoint.pkl)")
        with open(self.path / "model.pkl", "rb") as handle:
            arguments = pickle.load(handle)
        with open(self.path / "checkpoint.pkl", "rb") as handle:
            checkpoint = pickle.load(handle)
        meta = json.loads((self.path / "run.json").read_text())
        return arguments, checkpoint, meta

    def read_draws(self, n_draws: int) -> dict[str, np.ndarray]:
        """The first ``n_draws`` draws; later ones (a chunk written after the last checkpoint) are
        cut off the store, so that appends continue from the checkpoint."""
        if not self.draws_path.exists():
            return {}
        if n_draws == 0:  # draws written after the last checkpoint only
            shutil.rmtree(self.draws_path)
            return {}
        import xarray as xr
        import zarr

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            group = zarr.open_group(self.draws_path, mode="r+")
            for name in group.array_keys():
                array = group[name]
                if (array.metadata.dimension_names or ())[1:2] == ("draw",) and array.shape[1] > n_draws:
                    array.resize((array.shape[0], n_draws, *array.shape[2:]))
            dataset = xr.open_zarr(self.draws_path, consolidated=False).load()
        return {name: np.asarray(dataset[name].values) for name in dataset.data_vars}
