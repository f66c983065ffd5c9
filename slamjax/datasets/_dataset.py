"""The container returned by the bundled data set loaders."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import pandas as pd


@dataclass(frozen=True)
class Dataset:
    """A multi-trait data set ready for :class:`slamjax.Model`.

    Attributes
    ----------
    name:
        Short name of the data set (e.g. ``"wheat"``).
    Y:
        Responses, individuals x traits. The index holds the individual ids.
    data:
        One row per individual (same index and order as ``Y``) with the
        grouping factors and covariates, e.g. a column ``line``.
    relmat:
        Relationship matrices keyed by the column of ``data`` they belong to;
        each is a square DataFrame whose index and columns are the levels of
        that factor.
    markers:
        Marker genotypes (individuals x markers), or ``None``.
    cv_folds:
        Cross-validation fold assignment (one row per individual), or ``None``.
    citation:
        The reference to cite when the data set is used.
    truth:
        For simulated data sets, the true parameter values; ``None`` for real data.
    marker_map:
        Genetic map of the markers (index marker, columns ``chromosome`` and ``position``), or
        ``None`` (for ``sj.markers.Markers(map=...)``).
    """

    name: str
    Y: pd.DataFrame
    data: pd.DataFrame
    relmat: dict[str, pd.DataFrame]
    markers: pd.DataFrame | None
    cv_folds: pd.DataFrame | None
    citation: str
    truth: dict | None = None
    marker_map: pd.DataFrame | None = None

    def __repr__(self) -> str:
        n, p = self.Y.shape
        rel = ", ".join(f"{k}: {v.shape[0]}x{v.shape[1]}" for k, v in self.relmat.items())
        extra = []
        if self.markers is not None:
            extra.append(f"markers={self.markers.shape[1]}")
        if self.cv_folds is not None:
            extra.append("cv_folds")
        if self.truth is not None:
            extra.append("truth")
        tail = (", " + ", ".join(extra)) if extra else ""
        return f"Dataset(name={self.name!r}, Y={n}x{p}, relmat={{{rel}}}{tail})"


def package_file(folder: str, name: str):
    """A bundled data file, ``slamjax/datasets/_data/<folder>/<name>``, from the installed package."""
    return resources.files(__package__).joinpath("_data", folder, name)


def read_package_csv(folder: str, name: str, **kwargs) -> pd.DataFrame:
    """Reads a bundled CSV file (gzip-compressed when its name ends in .gz) with pandas."""
    compression = "gzip" if name.endswith(".gz") else None
    with package_file(folder, name).open("rb") as fh:
        return pd.read_csv(fh, compression=compression, **kwargs)
