"""The Bottomly et al. (2011) mouse striatum RNA-seq data set bundled with slamjax."""

from __future__ import annotations


import numpy as np
import pandas as pd

from ._dataset import Dataset, read_package_csv

BOTTOMLY_CITATION = (
    "Bottomly, D., Walter, N. A. R., Hunter, J. E., Darakjian, P., Kawane, S., Buck, K. J., "
    "et al. (2011). Evaluating gene expression in C57BL/6J and DBA/2J mouse striatum using "
    "RNA-Seq and microarrays. PLoS ONE 6(3):e17820. "
    "Data: counts from the ReCount project (Frazee, Langmead and Leek 2011, "
    "BMC Bioinformatics 12:449)."
)





def _samples() -> pd.DataFrame:
    s = read_package_csv("bottomly", "samples.csv", dtype={"sample.id": str, "strain": str})
    ids = pd.Index(s["sample.id"].astype(str), name="sample")
    if not ids.is_unique:
        raise ValueError("bottomly data: duplicated sample ids in samples.csv")
    data = pd.DataFrame(index=ids)
    data["sample"] = ids.to_numpy()
    data["strain"] = pd.Categorical(s["strain"].astype(str).to_numpy(), categories=["C57BL/6J", "DBA/2J"])
    exp = s["experiment.number"].astype(int)
    data["experiment.number"] = pd.Categorical(
        exp.astype(str).to_numpy(), categories=[str(v) for v in sorted(exp.unique())]
    )
    lane = s["lane.number"].astype(int)
    data["lane"] = pd.Categorical(
        lane.astype(str).to_numpy(), categories=[str(v) for v in sorted(lane.unique())]
    )
    if data[["strain", "experiment.number", "lane"]].isna().any().any():
        raise ValueError("bottomly data: unexpected levels in samples.csv")
    return data


def _genes_by_samples(name: str, samples: pd.Index, dtype) -> pd.DataFrame:
    """A genes x samples file, returned samples x genes in the order of ``samples``."""
    X = read_package_csv("bottomly", name, index_col=0)
    X.index = pd.Index(X.index.astype(str), name="gene")
    X.columns = X.columns.astype(str)
    if not X.index.is_unique:
        raise ValueError(f"bottomly data: duplicated gene ids in {name}")
    if set(X.columns) != set(samples) or len(X.columns) != len(samples):
        raise ValueError(f"bottomly data: the samples of {name} and samples.csv differ")
    out = X.loc[:, list(samples)].T.astype(dtype)
    out.index = samples.copy()
    out.columns = X.index.copy()
    return out


def load_bottomly() -> Dataset:
    """Load the Bottomly et al. (2011) RNA-seq counts of mouse striatum.

    21 RNA-seq libraries of striatum from two inbred mouse strains
    (10 C57BL/6J, 11 DBA/2J), sequenced in three experiments (batches 4, 6
    and 7) on 7 Illumina lanes (1-3, 5-8); read counts of 36536 Ensembl genes
    (22604 of which have no read in any sample).

    Returns
    -------
    Dataset
        * ``Y``: samples x genes read counts (``int64``; index ``sample``,
          the SRA ids ``SRX033472`` ...; columns the Ensembl gene ids), in
          the sample order of the original count table.
        * ``data``: one row per sample (same index and order as ``Y``) with
          ``sample`` (str), ``strain`` (categorical ``C57BL/6J``/``DBA/2J``),
          ``experiment.number`` (categorical ``"4"``, ``"6"``, ``"7"``: the
          sequencing batch) and ``lane`` (categorical ``"1"`` to ``"8"``, no ``"4"``;
          the flow-cell lane).
        * ``relmat`` is ``{}`` (two inbred strains: no relationship matrix);
          ``markers``, ``cv_folds`` and ``truth`` are ``None``.

    See Also
    --------
    load_bottomly_voom : limma's ``voom`` output on these counts, for reference.

    Notes
    -----
    Please cite the original study when you use these data:

    Bottomly, D., Walter, N. A. R., Hunter, J. E., Darakjian, P., Kawane, S.,
    Buck, K. J., et al. (2011). Evaluating gene expression in C57BL/6J and
    DBA/2J mouse striatum using RNA-Seq and microarrays. *PLoS ONE*
    6(3):e17820.

    The count table comes from the ReCount project (Frazee, A. C., Langmead,
    B. and Leek, J. T. (2011). ReCount: a multi-experiment resource of
    analysis-ready RNA-seq gene count datasets. *BMC Bioinformatics* 12:449).
    """
    data = _samples()
    Y = _genes_by_samples("counts.csv.gz", data.index, np.int64)
    if (Y.to_numpy() < 0).any():
        raise ValueError("bottomly data: negative counts")
    return Dataset(
        name="bottomly",
        Y=Y,
        data=data,
        relmat={},
        markers=None,
        cv_folds=None,
        citation=BOTTOMLY_CITATION,
    )


def load_bottomly_voom() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference output of limma's ``voom()`` on the Bottomly counts.

    Computed with limma 3.54.1 on the genes with a count-per-million above 1
    in at least 3 samples (10228 genes), without TMM normalisation, with the
    design ``~ strain``. The library sizes are the column sums of the
    *filtered* count matrix (``log-cpm = log2((count + 0.5) / (lib + 1) *
    1e6)`` with ``lib`` summed over the 10228 genes; it agrees to 5e-14);
    the sums over all 36536 genes differ by up to 9e-4 on the log2 scale.

    Returns
    -------
    (logcpm, weights): tuple of pandas.DataFrame
        Both samples x genes (21 x 10228), with the index and sample order of
        ``load_bottomly().Y`` and the genes in the order of the count table:
        voom's ``E`` (log2 counts per million) and its precision ``weights``.

    Notes
    -----
    Cite Bottomly et al. (2011) for the data (see :func:`load_bottomly`) and,
    for voom, Law, C. W., Chen, Y., Shi, W. and Smyth, G. K. (2014). voom:
    precision weights unlock linear model analysis tools for RNA-seq read
    counts. *Genome Biology* 15:R29.
    """
    samples = _samples().index
    logcpm = _genes_by_samples("voom_logcpm.csv.gz", samples, float)
    weights = _genes_by_samples("voom_weights.csv.gz", samples, float)
    if not logcpm.columns.equals(weights.columns):
        raise ValueError("bottomly data: the genes of the voom log-cpm and weights differ")
    return logcpm, weights
