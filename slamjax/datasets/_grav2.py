"""The Arabidopsis RIL root-gravitropism data set (R/qtl2 ``grav2``) bundled with slamjax."""

from __future__ import annotations


import numpy as np
import pandas as pd

from ..relationship import grm
from ._dataset import Dataset, read_package_csv

GRAV2_CITATION = (
    "Moore, C. R., Johnson, L. S., Kwak, I.-Y., Livny, M., Broman, K. W., Spalding, E. P. (2013). "
    "High-throughput computer vision introduces the time axis to a quantitative trait map of a "
    "plant growth response. Genetics 195(3):1077-1086. "
    "Data: the grav2 example data of the R/qtl2 package (GPL-3)."
)

_GENO_CODES = {"L": 0.0, "C": 1.0}  # Landsberg erecta (Ler) = 0, Cape Verde Islands (Cvi) = 1




def load_grav2() -> Dataset:
    """Load the Arabidopsis Ler x Cvi RIL root-gravitropism time series.

    162 recombinant inbred lines (RILs) of *Arabidopsis thaliana*
    (Landsberg *erecta* x Cape Verde Islands): the tip angle of the root
    (degrees) after a 90 degree rotation, recorded every 2 minutes for 8
    hours (241 time points, no missing values), and 234 markers on the 5
    chromosomes. A function-valued trait for random-regression (e.g.
    B-spline) models.

    Returns
    -------
    Dataset
        * ``Y``: RILs x 241 time points (index ``id``, the RIL ids ``"1"``
          to ``"162"`` as strings; columns the original names ``T0``,
          ``T2``, ..., ``T480``, i.e. minutes). The times in hours
          (0, 1/30, ..., 8) are in ``Y.attrs["time_hours"]`` (a float
          array aligned with the columns).
        * ``data``: one row per RIL with the column ``id``.
        * ``markers``: RILs x 234 markers, float, coded 0 for the Ler
          allele (``L``), 1 for the Cvi allele (``C``) and ``NaN`` where the
          genotype is missing (545 of 37908 genotypes).
        * ``relmat == {"id": G}``: the genomic relationship matrix
          ``slamjax.relationship.grm(markers, coding="01")`` (VanRaden 2008,
          missing genotypes imputed by the marker mean), in the order of
          ``Y``. As for any inbred lines with 0/1 codes doubled to 0/2, its
          diagonal averages about 2 (``1 + F`` with ``F = 1``); it is
          positive semi-definite with rank 161.
        * ``marker_map``: chromosome and position (cM) of each marker.
        * ``cv_folds`` is ``None``.

    Notes
    -----
    Please cite the original study when you use these data:

    Moore, C. R., Johnson, L. S., Kwak, I.-Y., Livny, M., Broman, K. W. and
    Spalding, E. P. (2013). High-throughput computer vision introduces the
    time axis to a quantitative trait map of a plant growth response.
    *Genetics* 195(3):1077-1086.

    The data are the ``grav2`` example data of the R/qtl2 package (GPL-3).
    """
    Y = read_package_csv("grav2", "pheno.csv.gz", index_col="id")
    geno = read_package_csv("grav2", "geno.csv.gz", index_col="id", dtype=str)
    covar = read_package_csv("grav2", "phenocovar.csv.gz")

    ids = pd.Index(Y.index.astype(str), name="id")
    if not ids.is_unique:
        raise ValueError("grav2 data: duplicated RIL ids in pheno.csv.gz")
    Y.index = ids
    Y = Y.astype(float)
    Y.columns = pd.Index(Y.columns.astype(str), name="time")
    if list(covar["pheno"].astype(str)) != list(Y.columns):
        raise ValueError("grav2 data: the time points of phenocovar.csv.gz and pheno.csv.gz differ")
    Y.attrs["time_hours"] = covar["time (hrs)"].to_numpy(dtype=float)

    geno.index = pd.Index(geno.index.astype(str), name="id")
    if set(geno.index) != set(ids) or len(geno.index) != len(ids):
        raise ValueError("grav2 data: the RIL ids of geno.csv.gz and pheno.csv.gz differ")
    geno = geno.loc[ids]
    codes = set(np.unique(geno.to_numpy().astype(str)))
    if not codes <= {"L", "C", "-", "nan"}:
        raise ValueError(f"grav2 data: unexpected genotype codes {sorted(codes)}")
    markers = geno.apply(lambda col: col.map(_GENO_CODES)).astype(float)
    markers.columns = pd.Index(markers.columns.astype(str), name="marker")
    markers.index = ids.copy()

    G = grm(markers, coding="01")
    G.index = ids.copy()
    G.columns = ids.copy()

    data = pd.DataFrame({"id": ids.to_numpy()}, index=ids.copy())

    return Dataset(
        name="grav2",
        Y=Y,
        data=data,
        relmat={"id": G},
        markers=markers,
        marker_map=_marker_map(list(markers.columns)),
        cv_folds=None,
        citation=GRAV2_CITATION,
    )


def _marker_map(names: list[str]) -> pd.DataFrame:
    """The genetic map (cM) of the markers, in ``names``' order (gmap.csv.gz: marker, chr, pos)."""
    raw = read_package_csv("grav2", "gmap.csv.gz")
    frame = pd.DataFrame({"chromosome": raw["chr"].astype(str).to_numpy(), "position": raw["pos"].astype(float).to_numpy()},
                         index=pd.Index(raw["marker"].astype(str), name="marker"))
    missing = [name for name in names if name not in frame.index]
    if missing:
        raise ValueError(f"grav2 data: markers without a map position: {missing[:5]}")
    return frame.loc[names]

