"""What ``slamjax fit`` writes beside its store: ``summary.csv``, PNG plots, predictions and a
self-contained ``report.html``.

    write_outputs(run, folder, info)   summary.csv, plots/*.png, predictions.csv (if asked), report.html
    write_plots(run, folder, kinds)    the PNG plots (``PLOT_KINDS``), each in its own file
    write_report(run, folder, info)    report.html only (``slamjax report DIR`` regenerates it)
    predictions(run, levels, interval) genetic values as a tidy table (level, trait, mean, lower, upper)

``info`` is what the command line knows about the fit and the store does not (the files read,
their sizes, the configuration); it is kept as ``fit.json`` in the folder, so that the report can
be rebuilt from the folder alone. The report embeds its images as base64 PNG: one file to mail.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ._errors import SlamjaxInputError

__all__ = ["PLOT_KINDS", "convergence", "predictions", "summary_table", "write_outputs", "write_plots",
           "write_report"]

#: Plots written by ``fit`` and ``slamjax plot``: kind -> file name.
PLOT_KINDS: dict[str, str] = {
    "h2": "h2.png",
    "correlations": "genetic_correlations.png",
    "loadings": "loadings.png",
    "trace": "trace.png",
    "fitted": "predicted_vs_observed.png",
}
INFO_FILE, SUMMARY_FILE, PREDICTIONS_FILE, REPORT_FILE, PLOT_FOLDER = (
    "fit.json", "summary.csv", "predictions.csv", "report.html", "plots")
_TRACE_PANELS = 6
#: the report prints a whole correlation matrix up to this many traits, else the strongest pairs
REPORT_MATRIX_TRAITS = 30
REPORT_PAIRS = 30
_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:90%;margin:0.5em 0 1.5em}
th,td{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child{text-align:left}
.ok{color:#1a7f37}.bad{color:#b42318}img{max-width:100%}figure{margin:1em 0}
code{background:#f4f4f4;padding:0 3px}
"""


# ----------------------------------------------------------------------------- tables


def summary_table(run) -> tuple[pd.DataFrame, list[str]]:
    """``run.summary()`` of h2, G and B, and the warnings it gave (as text, for the report)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = run.summary()
    return table, [str(w.message) for w in caught]


def convergence(table: pd.DataFrame, n: int = 10) -> dict:
    """The largest r_hat and smallest bulk ESS (naming the parameters) and the ``n`` worst rows."""
    r_hat = pd.to_numeric(table.get("r_hat"), errors="coerce") if "r_hat" in table else pd.Series(dtype=float)
    ess = pd.to_numeric(table.get("ess_bulk"), errors="coerce") if "ess_bulk" in table else pd.Series(dtype=float)
    if not r_hat.notna().any():
        return {"available": False, "worst": table.iloc[:0]}
    worst = table.assign(_r=r_hat.fillna(-np.inf)).sort_values("_r", ascending=False).drop(columns="_r").head(n)
    result = {
        "available": True,
        "max_r_hat": float(r_hat.max()), "max_r_hat_at": str(r_hat.idxmax()),
        "min_ess_bulk": float(ess.min()), "min_ess_bulk_at": str(ess.idxmin()),
        "worst": worst,
    }
    result["ok"] = result["max_r_hat"] <= 1.01 and result["min_ess_bulk"] >= 400
    return result


def _elements(run, names) -> dict[str, tuple[str, tuple]]:
    """Summary label (as ``run.summary`` writes it, e.g. "G[a, b]") -> (variable, position)."""
    posterior = run.posterior
    out = {}
    for name in names:
        if name not in posterior:
            continue
        da = posterior[name]
        other = [d for d in da.dims if d not in ("chain", "draw")]
        for index in np.ndindex(*[da.sizes[d] for d in other]):
            labels = [str(da.coords[d].values[i]) for d, i in zip(other, index)]
            out[f"{name}[{', '.join(labels)}]" if labels else name] = (name, index)
    return out


def trace_slowest(run, table: pd.DataFrame, n: int = _TRACE_PANELS, *, save=None):
    """Trace per chain and rank histograms of the ``n`` parameters of ``table`` with the largest
    r_hat (ties: the smallest bulk ESS), named as in the summary."""
    from scipy.stats import rankdata

    from .plot import _figure, _finish

    order = table.assign(_r=pd.to_numeric(table["r_hat"], errors="coerce").fillna(-np.inf),
                         _e=-pd.to_numeric(table["ess_bulk"], errors="coerce").fillna(np.inf))
    order = order.sort_values(["_r", "_e"], ascending=False).index
    names = {str(label).split("[", 1)[0] for label in order}
    where = _elements(run, names)
    chosen = [label for label in map(str, order) if label in where][:n]
    if not chosen:
        raise SlamjaxInputError("trace: no recorded parameter to plot")
    posterior = run.posterior
    fig = _figure(10.0, 0.6 + 1.7 * len(chosen))
    axes = fig.subplots(len(chosen), 2, squeeze=False, gridspec_kw={"width_ratios": [3, 1]})
    for row, label in enumerate(chosen):
        name, index = where[label]
        da = posterior[name]
        other = [d for d in da.dims if d not in ("chain", "draw")]
        x = np.asarray(da.transpose("chain", "draw", *other).values, dtype=float)[(slice(None), slice(None)) + index]
        n_chains, n_draws = x.shape
        bins = int(np.clip(n_draws // 10, 1, 20))
        ranks = rankdata(x.ravel()).reshape(x.shape)
        edges = np.linspace(0.5, x.size + 0.5, bins + 1)
        ax_trace, ax_rank = axes[row]
        for c in range(n_chains):
            ax_trace.plot(np.arange(n_draws), x[c], color=f"C{c % 10}", lw=0.7, alpha=0.8, label=f"chain {c}")
            counts, _ = np.histogram(ranks[c], bins=edges)
            ax_rank.stairs(counts, edges, color=f"C{c % 10}", lw=1.2)
        ax_rank.axhline(n_draws / bins, color="0.4", ls="--", lw=0.8)
        ax_rank.set_yticks([])
        r_hat = table.loc[label, "r_hat"] if label in table.index else np.nan
        ax_trace.set_title(f"{label}: r_hat {float(r_hat):.3f}", fontsize=8, loc="left")
        if row == 0 and n_chains > 1:
            ax_trace.legend(fontsize=7, loc="upper right", ncol=min(n_chains, 4))
    axes[-1, 0].set_xlabel("draw")
    axes[-1, 1].set_xlabel("rank (all chains pooled)")
    return _finish(fig, save)


def predictions(run, levels=None, interval: float | None = 0.9, effect: str | None = None) -> pd.DataFrame:
    """Genetic values of ``levels`` (None: every level of the first random effect's K) as a tidy
    table: level, trait, mean, and with ``interval`` (when the run kept the genetic values per
    draw) lower and upper."""
    if interval is not None and "U" not in run.draws:
        interval = None
    result = run.predict(levels=levels, interval=interval, effect=effect)
    frames = result if isinstance(result, dict) else {"mean": result}
    tidy = None
    for name, frame in frames.items():
        long = frame.rename_axis(index="level", columns="trait").stack().rename(name)
        tidy = long.to_frame() if tidy is None else tidy.join(long)
    return tidy.reset_index()


# ----------------------------------------------------------------------------- plots


def write_plots(run, folder, kinds=("h2", "correlations", "loadings", "trace"), table=None) -> dict[str, str]:
    """Save each plot of ``kinds`` (keys of ``PLOT_KINDS``) to ``folder``: {kind: path or 'not
    available: reason'}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import plot

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for kind in kinds:
        path = folder / PLOT_KINDS[kind]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if kind == "h2":
                    fig = plot.h2(run, save=path)
                elif kind == "correlations":
                    fig = plot.correlations(run, kind="both", save=path)
                elif kind == "loadings":
                    fig = plot.loadings(run, save=path)
                elif kind == "fitted":
                    fig = plot.predicted_vs_observed(run, save=path)
                else:
                    fig = trace_slowest(run, table if table is not None else summary_table(run)[0], save=path)
            plt.close(fig)
            made[kind] = str(path)
        except SlamjaxInputError as error:
            made[kind] = f"not available: {error}"
    return made


# ----------------------------------------------------------------------------- the report


def _e(value) -> str:
    return html.escape(str(value))


def _rows(rows) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td style='text-align:left'>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _frame_html(frame: pd.DataFrame, table_id: str, digits: int = 3) -> str:
    return frame.to_html(table_id=table_id, float_format=lambda x: f"{x:.{digits}f}", border=0, na_rep="")


def _image(path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"<img alt='{_e(Path(path).stem)}' src='data:image/png;base64,{data}'>"


def h2_table(run, table: pd.DataFrame) -> pd.DataFrame:
    """h2 per trait (and random effect): mean, interval, r_hat and bulk ESS, from the summary."""
    rows = table[[str(i).startswith("h2[") for i in table.index]]
    columns = [c for c in rows.columns if c in ("mean", "sd") or c.startswith(("eti", "hdi")) or c in
               ("ess_bulk", "r_hat")]
    rows = rows[columns].copy()
    rows.index = [str(i)[3:-1] for i in rows.index]
    rows.index.name = "effect, trait" if len(run.model.effect_names) > 1 else "trait"
    return rows


def strongest_pairs(corr: pd.DataFrame, n: int) -> pd.DataFrame:
    """The ``n`` pairs of traits with the largest |correlation|: columns trait, with, correlation."""
    values = corr.to_numpy(dtype=float)
    i, j = np.triu_indices(len(values), 1)
    r = values[i, j]
    keep = np.argsort(-np.abs(np.nan_to_num(r, nan=0.0)), kind="stable")[:n]
    return pd.DataFrame({"trait": corr.index[i[keep]].astype(str), "with": corr.columns[j[keep]].astype(str),
                         "correlation": r[keep]}).set_index("trait")


def _correlation_frames(run) -> dict[str, pd.DataFrame]:
    value = run.posterior_mean("genetic_correlation")
    return value if isinstance(value, dict) else {run.model.effect_names[0]: value}


def _priors_text(priors) -> str:
    if priors is None:
        return "MegaLMM's defaults"
    import dataclasses

    from .priors._priors import _describe

    return ", ".join(f"{f.name}={_describe(getattr(priors, f.name))}" for f in dataclasses.fields(priors))


def _what_was_fitted(run, info: dict) -> list[tuple[str, str]]:
    m, s = run.model, run.settings
    shapes = m.shapes
    rows = []
    if info.get("dataset"):
        rows.append(("data set", f"{info['dataset']} (cite: {info.get('citation', '')})"))
    for key, text in (info.get("described") or {}).items():
        rows.append((key, text))
    rows += [
        ("individuals x traits", f"{shapes['n']} x {shapes['p']} ({1.0 - m.observed_fraction:.1%} of cells missing)"),
        ("formula", getattr(m, "formula", None) or "Y = 1 mu + F Lambda + Z U + E (matrix form)"),
        ("random effects", ", ".join(f"{g} ({len(m.effect_levels[g]) if len(m.effect_names) > 1 else shapes['r']} "
                                     f"levels)" for g in m.effect_names)),
        ("factors", shapes["k"]),
        ("h2 grid", f"{m.grid.shape[0]} points (h2_divisions={m.h2_divisions})"),
        ("observation model", type(m.observation).__name__),
        ("priors", _priors_text(getattr(m, "priors", None))),
        ("sampling", f"{s['num_chains']} chains, {s['num_warmup']} warm-up sweeps, {s['num_samples']} draws "
                     f"thinned by {s['thin']}, seed {s['seed']}"),
        ("draws kept", f"{run.draws['h2'].shape[1]} per chain ({'complete' if run.complete else 'incomplete: '
                                                                  'slamjax resume DIR finishes it'})"),
        ("sampling time", f"{run.elapsed:.1f} s"),
    ]
    return rows


def render_html(run, info: dict, table: pd.DataFrame, notes: list[str], plots: dict[str, str],
                predicted: pd.DataFrame | None = None) -> str:
    """The report as one HTML string (images embedded)."""
    from . import __version__

    conv = convergence(table)
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>slamjax report</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>slamjax report</h1><p>{_e(info.get('title', ''))} Written "
             f"{_e(datetime.datetime.now().isoformat(timespec='seconds'))} by slamjax {_e(__version__)}.</p>",
             "<h2 id='fitted'>What was fitted</h2>", _rows(_what_was_fitted(run, info))]
    parts.append("<h2 id='convergence'>Convergence</h2>")
    if conv["available"]:
        verdict = ("<span class='ok'>looks converged (largest r_hat &le; 1.01, smallest bulk ESS &ge; 400)</span>"
                   if conv["ok"] else "<span class='bad'>not converged yet: <code>slamjax resume DIR --samples N"
                   "</code> adds draws</span>")
        parts.append(f"<p>{verdict}. Largest r_hat {conv['max_r_hat']:.3f} ({_e(conv['max_r_hat_at'])}); "
                     f"smallest bulk ESS {conv['min_ess_bulk']:.0f} ({_e(conv['min_ess_bulk_at'])}), over "
                     f"{len(table)} parameters (h2, G, B).</p><p>The worst parameters:</p>")
        shown = [c for c in ("mean", "sd", "ess_bulk", "ess_tail", "r_hat") if c in conv["worst"].columns]
        parts.append(_frame_html(conv["worst"][shown], "worst"))
    else:
        parts.append("<p>Too few draws to judge (r_hat needs several chains and draws).</p>")
    for note in notes:
        parts.append(f"<p><small>{_e(note)}</small></p>")
    if "trace" in plots and not plots["trace"].startswith("not available"):
        parts.append(f"<figure>{_image(plots['trace'])}<figcaption>Trace and rank histograms of the slowest "
                     f"parameters</figcaption></figure>")
    parts.append("<h2 id='heritability'>Heritability</h2>")
    parts.append(_frame_html(h2_table(run, table), "h2"))
    if "h2" in plots and not plots["h2"].startswith("not available"):
        parts.append(f"<figure>{_image(plots['h2'])}</figure>")
    parts.append("<h2 id='correlations'>Genetic correlations</h2>")
    if "correlations" in plots and not plots["correlations"].startswith("not available"):
        parts.append(f"<figure>{_image(plots['correlations'])}<figcaption>Genetic (left) and residual (right) "
                     f"correlations, traits clustered</figcaption></figure>")
    for effect, frame in _correlation_frames(run).items():
        if len(frame) <= REPORT_MATRIX_TRAITS:
            parts.append(f"<p>Posterior mean genetic correlation ({_e(effect)}):</p>")
            parts.append(_frame_html(frame, f"genetic_correlation_{effect}", digits=2))
        else:
            pairs = strongest_pairs(frame, REPORT_PAIRS)
            parts.append(f"<p>Posterior mean genetic correlation ({_e(effect)}) of {len(frame)} traits: the "
                         f"{len(pairs)} strongest of {len(frame) * (len(frame) - 1) // 2} pairs (all of them: "
                         f"<code>run.posterior_mean(\"genetic_correlation\")</code>):</p>")
            parts.append(_frame_html(pairs, f"genetic_correlation_{effect}", digits=2))
    if "loadings" in plots:
        parts.append("<h2 id='loadings'>Factor loadings</h2>")
        parts.append(f"<figure>{_image(plots['loadings'])}</figure>" if not plots["loadings"].startswith(
            "not available") else f"<p>{_e(plots['loadings'])}</p>")
    if "fitted" in plots and not plots["fitted"].startswith("not available"):
        parts.append(f"<h2 id='fitted_values'>Fitted against observed</h2><figure>{_image(plots['fitted'])}</figure>")
    if predicted is not None:
        parts.append("<h2 id='predictions'>Predicted genetic values</h2>")
        parts.append(f"<p>{len(predicted)} rows; all of them in <code>{PREDICTIONS_FILE}</code>"
                     f"{'' if 'lower' in predicted else ' (no intervals: the run did not keep the genetic values per draw)'}"
                     f".</p>")
        parts.append(_frame_html(predicted.head(50).set_index(["level", "trait"]), "predictions"))
    parts.append("</body></html>")
    return "\n".join(parts)


def _read_info(folder: Path) -> dict:
    try:
        return json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def write_report(run, folder, info: dict | None = None, table=None, notes=None, plots=None) -> Path:
    """Write ``report.html`` in ``folder`` from the run, the plots already there (missing ones are
    made) and predictions.csv if there is one. ``info``: default ``fit.json`` of the folder."""
    folder = Path(folder)
    info = _read_info(folder) if info is None else info
    if table is None:
        table, notes = summary_table(run)
    if plots is None:
        kinds = [k for k in ("h2", "correlations", "loadings", "trace")]
        plots = {k: str(folder / PLOT_FOLDER / PLOT_KINDS[k]) for k in kinds
                 if (folder / PLOT_FOLDER / PLOT_KINDS[k]).exists()}
        missing = [k for k in kinds if k not in plots]
        if missing:
            plots.update(write_plots(run, folder / PLOT_FOLDER, missing, table))
    predicted = None
    if (folder / PREDICTIONS_FILE).exists():
        predicted = pd.read_csv(folder / PREDICTIONS_FILE, dtype={"level": str, "trait": str})
    path = folder / REPORT_FILE
    path.write_text(render_html(run, info, table, notes or [], plots, predicted), encoding="utf-8")
    return path


def write_outputs(run, folder, info: dict, *, plots: bool = True, predict: dict | None = None) -> dict[str, str]:
    """Everything ``slamjax fit`` writes beside the store: fit.json, summary.csv, the plots,
    predictions.csv (``predict``: {"levels": "all" or a list, "interval": p}) and report.html.
    Returns {what: path}."""
    folder = Path(folder)
    (folder / INFO_FILE).write_text(json.dumps(info, indent=1, default=str), encoding="utf-8")
    table, notes = summary_table(run)
    table.to_csv(folder / SUMMARY_FILE, index_label="parameter")
    written = {"summary": str(folder / SUMMARY_FILE)}
    made = write_plots(run, folder / PLOT_FOLDER, table=table) if plots else {}
    written.update({k: v for k, v in made.items() if not v.startswith("not available")})
    if predict is not None:
        levels = None if predict.get("levels", "all") == "all" else predict["levels"]
        predictions(run, levels, predict.get("interval", 0.9)).to_csv(folder / PREDICTIONS_FILE, index=False)
        written["predictions"] = str(folder / PREDICTIONS_FILE)
    elif (folder / PREDICTIONS_FILE).exists():
        (folder / PREDICTIONS_FILE).unlink()  # from an earlier fit in this folder
    written["report"] = str(write_report(run, folder, info, table, notes, made))
    return written
