"""The CIMMYT wheat data set bundled with slamjax."""

from __future__ import annotations


import numpy as np
import pandas as pd

from ._dataset import Dataset, read_package_csv

WHEAT_CITATION = (
    "Crossa, J., de los Campos, G., Perez, P., Gianola, D., Burgueno, J., Araus, J. L., "
    "et al. (2010). Prediction of genetic values of quantitative traits in plant breeding "
    "using pedigree and molecular markers. Genetics 186(2):713-724. "
    "Data: CIMMYT wheat, distributed with the BGLR R package (GPL-3)."
)





def load_wheat() -> Dataset:
    """Load the CIMMYT wheat multi-environment trial.

    599 wheat lines evaluated for grain yield in 4 environments (``env1``,
    ``env2``, ``env4``, ``env5``; standardised within environment, no missing
    values), with the 599 x 599 pedigree-based additive relationship matrix,
    1279 DArT markers coded 0/1 and an assignment of the lines to 10
    cross-validation folds.

    Returns
    -------
    Dataset
        ``Y`` is lines x environments (index ``line``); ``data`` has one row
        per line with a column ``line``; ``relmat == {"line": A}`` with ``A``
        indexed (rows and columns) by the line ids in the order of ``Y``;
        ``markers`` is lines x markers; ``cv_folds`` has a column ``fold``
        (1 to 10).

    Notes
    -----
    Please cite the original study when you use these data:

    Crossa, J., de los Campos, G., Perez, P., Gianola, D., Burgueno, J.,
    Araus, J. L., et al. (2010). Prediction of genetic values of quantitative
    traits in plant breeding using pedigree and molecular markers.
    *Genetics* 186(2):713-724.

    The data are distributed with the BGLR R package under the GPL-3 licence.
    """
    Y = read_package_csv("wheat", "phenotypes.csv", index_col="line")
    A = read_package_csv("wheat", "pedigree_relationship.csv.gz", index_col=0)
    markers = read_package_csv("wheat", "markers.csv.gz", index_col="line")
    cv_folds = read_package_csv("wheat", "cv_folds.csv", index_col="line")

    ids = Y.index.astype(str)
    Y.index = pd.Index(ids, name="line")
    Y.columns = pd.Index(Y.columns.astype(str), name="trait")
    if not Y.index.is_unique:
        raise ValueError("wheat data: duplicated line ids in phenotypes.csv")

    A.index = A.index.astype(str)
    A.columns = A.columns.astype(str)
    if not A.index.equals(A.columns):
        raise ValueError("wheat data: rows and columns of the relationship matrix differ")
    if set(A.index) != set(ids) or len(A.index) != len(ids):
        raise ValueError("wheat data: the line ids of the relationship matrix and of Y differ")
    A = A.loc[ids, ids]
    A.index.name = "line"
    A.columns.name = "line"
    if not np.allclose(A.to_numpy(), A.to_numpy().T):
        raise ValueError("wheat data: the relationship matrix is not symmetric")

    markers.index = pd.Index(markers.index.astype(str), name="line")
    markers = markers.loc[ids]
    cv_folds.index = pd.Index(cv_folds.index.astype(str), name="line")
    cv_folds = cv_folds.loc[ids]

    data = pd.DataFrame({"line": ids}, index=Y.index)

    return Dataset(
        name="wheat",
        Y=Y,
        data=data,
        relmat={"line": A},
        markers=markers,
        cv_folds=cv_folds,
        citation=WHEAT_CITATION,
    )
