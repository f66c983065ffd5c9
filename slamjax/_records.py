"""What a run records, chosen by size, and how much memory and disk that takes.

Every draw keeps the small quantities (h2, resid_h2, F_h2, tot_Eta_prec, B, B_F, a link's own
parameters, the user's functions); running means are kept of G, R, the genetic values U and the
fitted values Eta_mean. Three records grow with size and are chosen here:

* G and R per draw (p x p each): kept when p <= ``COVARIANCE_DRAWS_MAX_TRAITS``.
* Lambda per draw (k x p): kept while all its draws take at most ``LOADINGS_DRAWS_MAX_BYTES``
  (they are held in host memory and written to the store): 4 chains x 1000 draws at p = 5000 and
  k = 100 would take 16 GB.
* The running means of G and R: (R + 1) p^2 k multiply-adds per draw, against a sweep's O(n p k)
  (``_costs.py``), so they outgrow the sweep when p is large against n. They are averaged over
  every m-th draw, m the smallest that keeps them under ``COVARIANCE_SHARE`` of a sweep's
  weighted multiply-adds. Their Monte Carlo error grows by at most sqrt(m), and by less where
  successive draws are correlated (the slow elements of G have far fewer effective draws than
  draws).

``plan_records`` returns the choice with its sizes; ``RecordPlan.describe`` is what ``sample``
says at the start.
"""

from __future__ import annotations

import dataclasses
import math
import os

import jax
import numpy as np

from ._costs import covariance_record_cost, sweep_cost
from ._errors import SlamjaxInputError
from ._sampler_data import SamplerData
from .posterior import _LARGE_MEANS, record_function, running_template
from .state import init_state

__all__ = ["COVARIANCE_DRAWS_MAX_TRAITS", "COVARIANCE_SHARE", "LOADINGS_DRAWS_MAX_BYTES", "RecordPlan",
           "plan_records"]

COVARIANCE_DRAWS_MAX_TRAITS = 100
LOADINGS_DRAWS_MAX_BYTES = 2 * 2**30
COVARIANCE_SHARE = 0.05
# share of the device's (or host's) memory the records may take beside the model
_MEMORY_SHARE = 0.5


@dataclasses.dataclass(frozen=True)
class RecordPlan:
    """What a run records and what it costs.

    per_draw: {name: shape of one chain's draw}; running: names of the running means;
    covariance_every: G and R are averaged over the draws whose index is a multiple of it;
    bytes_per_draw: one draw of one chain (host memory and store); device_bytes: the running-mean
    sums of every chain and one chunk of draws on the device.
    """

    per_draw: dict
    running: tuple
    covariance_every: int
    num_chains: int
    num_samples: int
    bytes_per_draw: int
    device_bytes: int

    @property
    def store_bytes(self) -> int:
        """Bytes of every chain's draws when the run is complete (held in host memory, and on disk)."""
        return self.num_chains * self.num_samples * self.bytes_per_draw

    def describe(self) -> str:
        """One paragraph: what is kept per draw, what is averaged, and how large it all is."""
        every = "" if self.covariance_every == 1 else f" (over every {_ordinal(self.covariance_every)} draw)"
        shown = {"Lambda_aligned": "aligned Lambda", "F_h2_aligned": "aligned F_h2", "B_F_aligned": "aligned B_F"}
        running = [f"{shown.get(name, name)}{every}" if name in _LARGE_MEANS else name for name in self.running]
        return (
            f"records: every draw of {', '.join(self.per_draw)}; running means of {', '.join(running)}. "
            f"{self.num_chains} chains x {self.num_samples} draws x {_size(self.bytes_per_draw)} = "
            f"{_size(self.store_bytes)} of draws (host memory and store); {_size(self.device_bytes)} on the "
            f"device for the running means and a chunk"
        )


def _ordinal(m: int) -> str:
    suffix = "th" if 10 <= m % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(m % 10, "th")
    return f"{m}{suffix}"


def _size(n_bytes: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n_bytes < 1000 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.3g} {unit}"
        n_bytes /= 1000
    raise AssertionError


def _nbytes(tree) -> int:
    return int(sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree)))


def choose_covariance_every(data: SamplerData, thin: int = 1) -> int:
    """The smallest m that keeps the running means of G and R under ``COVARIANCE_SHARE`` of the
    ``thin`` sweeps between draws."""
    sweeps = thin * sum(sweep_cost(data).values())
    return max(1, math.ceil(covariance_record_cost(data) / (COVARIANCE_SHARE * sweeps)))


def loadings_draws_bytes(data: SamplerData, num_chains: int, num_samples: int) -> int:
    s = data.shapes
    return 8 * num_chains * num_samples * s["k"] * s["p"]


def plan_records(
    data: SamplerData,
    *,
    num_chains: int,
    num_samples: int,
    chunk_size: int,
    thin: int = 1,
    record_covariances: bool | None,
    record_genetic_values: bool,
    record_loadings: bool | None,
    covariance_every: int | None,
    extra: tuple = (),
    available_memory: int | None = None,
) -> tuple[RecordPlan, dict]:
    """The record plan of a run and its settings {record_covariances, record_loadings,
    covariance_every} (None: chosen by size). Refuses, before anything is allocated, records that
    would not fit in ``available_memory`` (default: the device's, and the host's for the draws)."""
    p = data.shapes["p"]
    if record_covariances is None:
        record_covariances = p <= COVARIANCE_DRAWS_MAX_TRAITS
    if record_loadings is None:
        record_loadings = loadings_draws_bytes(data, num_chains, num_samples) <= LOADINGS_DRAWS_MAX_BYTES
    if covariance_every is None:
        covariance_every = 1 if record_covariances else choose_covariance_every(data, thin)
    settings = dict(record_covariances=bool(record_covariances), record_loadings=bool(record_loadings),
                    covariance_every=int(covariance_every))
    record_fn = record_function(settings["record_covariances"], bool(record_genetic_values), extra,
                                settings["record_loadings"], settings["covariance_every"])
    one_state = jax.eval_shape(init_state, jax.random.key(0), data)
    running = running_template(data, settings["record_loadings"])
    per_draw = jax.eval_shape(record_fn, one_state, data, running, 0)[0]
    bytes_per_draw = _nbytes(per_draw)
    device_bytes = num_chains * (_nbytes(running) + min(chunk_size, num_samples) * bytes_per_draw)
    plan = RecordPlan(
        per_draw={name: tuple(value.shape) for name, value in per_draw.items()}, running=tuple(running),
        covariance_every=settings["covariance_every"], num_chains=num_chains, num_samples=num_samples,
        bytes_per_draw=bytes_per_draw, device_bytes=device_bytes,
    )
    _check_memory(plan, available_memory)
    return plan, settings


def _check_memory(plan: RecordPlan, available: int | None) -> None:
    from .random_effects._plan import _available_memory

    device = _available_memory() if available is None else available
    host = (os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) if available is None else available
    if plan.device_bytes > _MEMORY_SHARE * device:
        raise SlamjaxInputError(
            f"memory: the records need {_size(plan.device_bytes)} on the device (running means of G and R are "
            f"p x p per chain and random effect, and one chunk of draws) but it has {_size(device)}; use fewer "
            "chains, a smaller chunk_size, record_covariances=False (G and R per draw) or record_genetic_values=False"
        )
    if plan.store_bytes > _MEMORY_SHARE * host:
        raise SlamjaxInputError(
            f"memory: {plan.num_chains} chains x {plan.num_samples} draws x {_size(plan.bytes_per_draw)} = "
            f"{_size(plan.store_bytes)} of draws would not fit in the host's {_size(host)}; keep fewer draws "
            "(a smaller num_samples with a larger thin covers the same sweeps), record_loadings=False, "
            "record_covariances=False or record_genetic_values=False"
        )

