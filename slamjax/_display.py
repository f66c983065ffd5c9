"""Rich display in Jupyter: the HTML that ``Model``, ``Run`` and ``Priors`` show as cell output.

Each ``*_html`` function returns a small self-contained HTML fragment (inline styles only):
sizes and settings at a glance, and for a run its convergence (the worst r_hat and smallest bulk
ESS of h2, naming the traits). Plain ``repr`` stays what it was for consoles and logs.
"""

from __future__ import annotations

import html
import warnings

__all__ = ["model_html", "run_html", "priors_html"]

_STYLE = "border-collapse:collapse;font-size:90%"
_CELL = "padding:2px 8px;text-align:left;border-bottom:1px solid #ddd"


def _table(title: str, rows: list[tuple[str, str]]) -> str:
    body = "".join(f'<tr><th style="{_CELL}">{html.escape(k)}</th><td style="{_CELL}">{html.escape(str(v))}</td></tr>'
                   for k, v in rows)
    return f'<div><strong>{html.escape(title)}</strong><table style="{_STYLE}">{body}</table></div>'


def _model_rows(model) -> list[tuple[str, str]]:
    s = model.shapes
    rows = [
        ("individuals (n)", s["n"]), ("traits (p)", s["p"]), ("factors (k)", s["k"]),
        ("fixed effects", f"{s['b']} on the traits, {s['b_F']} on the factors"),
        ("random effects", f"{', '.join(model.effect_names)} ({s['r']} levels)"),
        ("backend", model.backend), ("h2 grid", f"{model.grid.shape[0]} points (h2_divisions={model.h2_divisions})"),
        ("h2 draw", model.h2_draw),
        ("missing", f"{1.0 - model.observed_fraction:.1%} of cells ({model.missing_description})"),
        ("observation model", type(model.observation).__name__),
    ]
    if model.markers is not None:
        rows.append(("markers", repr(model.markers)))
    return rows


def model_html(model) -> str:
    return _table("slamjax Model", _model_rows(model))


def _convergence(run) -> list[tuple[str, str]]:
    """The worst r_hat and the smallest bulk ESS of h2, naming the traits."""
    if run.draws["h2"].shape[1] < 4:
        return [("convergence", "too few draws to judge")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = run.summary(var_names=["h2"])
    worst, smallest = table["r_hat"].idxmax(), table["ess_bulk"].idxmin()
    verdict = "ok" if table["r_hat"].max() <= 1.01 and table["ess_bulk"].min() >= 400 else \
        "not yet: run.resume(num_samples=...) adds draws"
    return [("largest r_hat of h2", f"{table['r_hat'].max():.3f} ({worst})"),
            ("smallest bulk ESS of h2", f"{table['ess_bulk'].min():.0f} ({smallest})"),
            ("converged (r_hat <= 1.01, ESS >= 400)", verdict)]


def run_html(run) -> str:
    s = run.settings
    draws = run.draws["h2"].shape[1]
    rows = [
        ("chains", s["num_chains"]), ("warm-up sweeps", s["num_warmup"]),
        ("draws per chain", f"{draws} of {s['num_samples']} (thin {s['thin']})"),
        ("state", "complete" if run.complete else "incomplete: run.resume() finishes it"),
        ("sampling time", f"{run.elapsed:.1f} s"),
        ("store", run.store if run.store is not None else "memory only"),
        *_convergence(run),
    ]
    return _table("slamjax Run", rows) + model_html(run.model)


def priors_html(priors) -> str:
    import dataclasses

    from .priors._priors import _MEANING, _describe

    rows = [(f"{field.name}: {_MEANING[field.name]}", _describe(getattr(priors, field.name)))
            for field in dataclasses.fields(priors)]
    return _table("slamjax Priors", rows)
