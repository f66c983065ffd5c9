"""The heterogeneous-stock mice data set bundled with slamjax."""

from __future__ import annotations


import numpy as np
import pandas as pd

from ._dataset import Dataset, package_file, read_package_csv

MICE_CITATION = (
    "Valdar, W., Solberg, L. C., Gauguier, D., Burnett, S., Klenerman, P., Cookson, W. O., "
    "et al. (2006). Genome-wide genetic association of complex traits in heterogeneous stock "
    "mice. Nature Genetics 38(8):879-887. "
    "Data: Wellcome Trust Centre heterogeneous stock mice, distributed with the BGLR R package (GPL-3)."
)

#: The 20 numeric traits returned in ``load_mice().Y`` (original column names).
MICE_TRAITS: tuple[str, ...] = (
    "Obesity.BMI",
    "Obesity.BodyLength",
    "Obesity.EndNormalBW",
    "Biochem.Albumin",
    "Biochem.ALP",
    "Biochem.ALT",
    "Biochem.AST",
    "Biochem.Calcium",
    "Biochem.Chloride",
    "Biochem.Creatinine",
    "Biochem.Glucose",
    "Biochem.HDL",
    "Biochem.LDL",
    "Biochem.Phosphorous",
    "Biochem.Potassium",
    "Biochem.Sodium",
    "Biochem.Tot.Cholesterol",
    "Biochem.Tot.Protein",
    "Biochem.Triglycerides",
    "Biochem.Urea",
)







def _categorical(values: pd.Series, categories: list[str]) -> pd.Series:
    """Strings as a categorical with the given levels (missing values stay missing)."""
    s = values.map(lambda v: v if pd.isna(v) else str(v))
    out = pd.Series(pd.Categorical(s, categories=categories), index=values.index, name=values.name)
    if out.isna().sum() != values.isna().sum():
        raise ValueError(f"mice data: unexpected levels in column {values.name!r}")
    return out


def load_mice(*, markers: bool = True) -> Dataset:
    """Load the heterogeneous-stock (HS) mice data set.

    1814 outbred mice of the Wellcome Trust heterogeneous stock with 20
    obesity-related and blood-biochemistry traits, covariates (sex, season,
    cage, litter, ...), the 1814 x 1814 pedigree-based additive relationship
    matrix and 10346 SNPs coded 0/1/2.

    Parameters
    ----------
    markers:
        Load the SNP genotypes (about 19 MB in memory as ``int8``; set to
        ``False`` to skip them, ``markers`` is then ``None``).

    Returns
    -------
    Dataset
        * ``Y``: mice x 20 traits (index ``mouse``, columns
          :data:`MICE_TRAITS`, float, ``NaN`` where missing). The traits are
          the three obesity measures (``Obesity.BMI``, ``Obesity.BodyLength``,
          ``Obesity.EndNormalBW`` = body weight) and the 17 blood
          biochemistry assays ``Biochem.*``. Missingness is uneven: none for
          the obesity traits, 86 to 654 per biochemistry assay, and
          ``Biochem.Potassium`` is observed on only 153 mice.
          Not traits: dates, ages and housing, which are covariates (in
          ``data``), and ``Biochem.EndNormalBW``, a copy of
          ``Obesity.EndNormalBW`` (equal wherever both are observed but one
          mouse) with 81 extra missing values.
        * ``data``: one row per mouse, same index and order as ``Y``, with

          - ``mouse`` (str): the mouse id (the level of ``relmat["mouse"]``);
          - ``GENDER`` (categorical ``F``/``M``);
          - ``season`` (categorical; ``Obesity.Date.Season``, season of the
            obesity measurements);
          - ``cage`` (categorical, 523 cages of 1 to 7 mice);
          - ``Litter`` (categorical ``"1"`` to ``"8"``): as in BGLR, a
            litter *number*, not a litter identifier shared by sibs;
          - ``CoatColour`` (categorical);
          - ``CageDensity`` (int, mice per cage);
          - ``StudyDay`` (int; ``Obesity.Date.StudyDay``, day of the study
            on which the obesity traits were measured);
          - ``Year`` and ``Month`` (int; ``Obesity.Date.Year/Month``);
          - ``Biochem.Age`` (float, age in days at the biochemistry
            sampling; NaN for 81 mice) and ``Biochem.Season`` (categorical;
            ``Biochem.Date.Season``, missing for 289 mice).
        * ``relmat == {"mouse": A}``: the pedigree relationship matrix with
          rows and columns in the order of ``Y``. Its diagonal is exactly 1
          (no inbreeding recorded) and its smallest eigenvalue is 0.5.
        * ``markers``: mice x SNPs ``int8`` DataFrame of allele counts
          0/1/2 (no missing values; columns are the SNP ids, e.g.
          ``rs3683945_G``), or ``None`` when ``markers=False``.
        * ``cv_folds`` is ``None``.

    Notes
    -----
    Please cite the original study when you use these data:

    Valdar, W., Solberg, L. C., Gauguier, D., Burnett, S., Klenerman, P.,
    Cookson, W. O., et al. (2006). Genome-wide genetic association of complex
    traits in heterogeneous stock mice. *Nature Genetics* 38(8):879-887.

    The data are distributed with the BGLR R package under the GPL-3 licence.
    """
    raw = read_package_csv("mice", "phenotypes.csv.gz", dtype={"mouse": str, "cage": str})
    ids = pd.Index(raw["mouse"].astype(str), name="mouse")
    if not ids.is_unique:
        raise ValueError("mice data: duplicated mouse ids in phenotypes.csv.gz")
    raw.index = ids

    Y = raw.loc[:, list(MICE_TRAITS)].astype(float)
    Y.columns = pd.Index(list(MICE_TRAITS), name="trait")

    data = pd.DataFrame(index=ids)
    data["mouse"] = ids.to_numpy()
    data["GENDER"] = _categorical(raw["GENDER"], ["F", "M"])
    seasons = ["winter", "spring", "summer", "autumn"]
    data["season"] = _categorical(raw["Obesity.Date.Season"], seasons)
    data["cage"] = _categorical(raw["cage"], sorted(raw["cage"].astype(str).unique()))
    data["Litter"] = _categorical(raw["Litter"], [str(v) for v in sorted(raw["Litter"].unique())])
    data["CoatColour"] = _categorical(raw["CoatColour"], sorted(raw["CoatColour"].astype(str).unique()))
    data["CageDensity"] = raw["CageDensity"].astype(int)
    data["StudyDay"] = raw["Obesity.Date.StudyDay"].astype(int)
    data["Year"] = raw["Obesity.Date.Year"].astype(int)
    data["Month"] = raw["Obesity.Date.Month"].astype(int)
    data["Biochem.Age"] = raw["Biochem.Age"].astype(float)
    data["Biochem.Season"] = _categorical(raw["Biochem.Date.Season"], seasons)

    A = read_package_csv("mice", "pedigree_relationship.csv.gz", index_col=0)
    A.index = A.index.astype(str)
    A.columns = A.columns.astype(str)
    if not A.index.equals(A.columns):
        raise ValueError("mice data: rows and columns of the relationship matrix differ")
    if len(A.index) != len(ids) or set(A.index) != set(ids):
        raise ValueError("mice data: the mouse ids of the relationship matrix and of Y differ")
    A = A.loc[list(ids), list(ids)]
    A.index = ids.copy()
    A.columns = ids.copy()
    if not np.allclose(A.to_numpy(), A.to_numpy().T):
        raise ValueError("mice data: the relationship matrix is not symmetric")

    M = None
    if markers:
        with package_file("mice", "snps.npz").open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
            geno = np.asarray(npz["genotypes"], dtype=np.int8)
            snp_mouse = npz["mouse"].astype(str)
            snp_ids = npz["snp"].astype(str)
        M = pd.DataFrame(
            geno,
            index=pd.Index(snp_mouse.tolist(), name="mouse"),
            columns=pd.Index(snp_ids.tolist(), name="snp"),
        )
        if set(M.index) != set(ids):
            raise ValueError("mice data: the mouse ids of the SNPs and of Y differ")
        M = M.loc[list(ids)]
        M.index = ids.copy()

    return Dataset(
        name="mice",
        Y=Y,
        data=data,
        relmat={"mouse": A},
        markers=M,
        cv_folds=None,
        citation=MICE_CITATION,
    )
