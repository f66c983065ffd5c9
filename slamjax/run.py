"""``sample``: the chunk loop over the compiled sampler, and ``Run``, the object users get back."""

from __future__ import annotations

import signal
import threading
import time
import warnings
from collections.abc import Hashable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from tqdm.std import TqdmWarning

with warnings.catch_warnings():  # a notebook without ipywidgets gets the text bar, without a warning
    warnings.simplefilter("ignore", TqdmWarning)
    from tqdm.auto import tqdm

from ._dtype import DTYPES, cast_floats, check_dtype, matmul_precision
from ._errors import NumericalError, SlamjaxInputError
from ._plain import checkpoint_from_plain, checkpoint_progress, checkpoint_to_plain, model_arguments_from_plain
from ._plain import model_to_plain
from ._records import plan_records
from ._sharding import is_writer, to_host, trait_sharding
from ._store import CHECKPOINT, MODEL_JSON, BackgroundWriter, RunStore
from ._x64 import call_as_user, float64
from .alignment import align_factor_effects, align_factor_h2, combine_aligned_means, factor_alignment
from .model import Model
from .posterior import _LARGE_MEANS, record_function, running_template, to_original_scale
from .sampler import BLOCK_NAMES, block_order, run_draws, run_warmup
from .state import init_state

__all__ = ["Run", "sample", "open_run"]

# Named dims of the draws as recorded. Factor positions of raw draws ("raw_factor") are the
# sampler's: they change meaning between draws and chains (the rotation is drawn). Lambda, B_F and
# F_h2 are reported aligned (``Run.aligned_factors``), on the dim "factor".
_EFFECT_DIMS = {"h2": ["effect", "trait"], "resid_h2": ["effect", "trait"], "F_h2": ["effect", "raw_factor"],
                "G": ["effect", "trait", "trait2"]}
_DIMS = {
    "Lambda": ["raw_factor", "trait"],
    "B": ["fixed", "trait"],
    "B_F": ["factor_fixed", "raw_factor"],
    "h2": ["trait"],
    "resid_h2": ["trait"],
    "F_h2": ["raw_factor"],
    "tot_Eta_prec": ["trait"],
    "G": ["trait", "trait2"],
    "R": ["trait", "trait2"],
    "B_M": ["marker", "raw_factor"],
}
_OR_NONE = {"record_covariances": " or None (by size)", "record_loadings": " or None (by size)"}
_ALIGNED = ("Lambda", "B_F", "F_h2", "B_M")  # factor-indexed draws, reported after alignment
_SYMMETRIC = ("G", "R", "P")  # (..., trait, trait2) matrices: summaries list the upper triangle


def _check_count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise SlamjaxInputError(f"{name}: must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _raise_on_failure(records: np.ndarray, collapsed_h2: bool = True, num_warmup: int = 0) -> None:
    """Raises ``NumericalError`` when a chain failed: ``records`` (chains, 2) holds per chain the first
    failing sweep (-1: none, counted from 0) and the failure bits of that sweep (``sampler.BLOCK_NAMES``)."""
    records = np.asarray(records).reshape(-1, 2)
    failed = np.flatnonzero(records[:, 0] >= 0)
    if not failed.size:
        return
    chain = int(failed[np.argmin(records[failed, 0])])  # the earliest failure
    sweep, bits = int(records[chain, 0]), int(records[chain, 1])
    blocks = [BLOCK_NAMES[i] for i in block_order(collapsed_h2) if bits >> i & 1]
    phase = "warm-up" if sweep < num_warmup else "sampling"
    message = (
        f"non-finite values (NaN or inf) in block '{blocks[0]}' at sweep {sweep + 1} ({phase}) of chain {chain}"
    )
    if len(blocks) > 1:
        message += f"; later in that sweep also in {', '.join(repr(b) for b in blocks[1:])}"
    others = [f"chain {c} at sweep {records[c, 0] + 1}" for c in failed if c != chain]
    if others:
        message += f"; also {', '.join(others)}"
    raise NumericalError(
        message + " (sweeps counted from 1, chains from 0 as in run.posterior). Check the data for infinite "
        "values, near-duplicate traits or extreme scales, and the priors for extreme hyperparameters",
        block=blocks[0], blocks=blocks, sweep=sweep + 1, chain=chain,
    )


@float64
def sample(
    model: Model,
    num_warmup: int = 1000,
    num_samples: int = 1000,
    thin: int = 1,
    num_chains: int = 1,
    seed: int = 0,
    *,
    chunk_size: int | None = None,
    record_covariances: bool | None = None,
    record_genetic_values: bool = False,
    record_loadings: bool | None = None,
    covariance_every: int | None = None,
    progress: bool = True,
    chain_keys=None,
    store=None,
    init: str = "random",
    reorder_factors: bool = False,
    callback=None,
    record: dict | None = None,
    devices=None,
    chain_groups: int = 1,
    dtype="float64",
) -> "Run":
    """Runs ``num_chains`` chains (vmapped) of the Gibbs sampler and returns a ``Run``.

    Each chain makes ``num_warmup`` sweeps, then ``num_samples`` recorded draws ``thin`` sweeps
    apart. Draws are copied to the host every ``chunk_size`` draws. What is recorded is chosen by
    size (``slamjax._records``) and said at the start (``Run.record_plan``): G and R are kept per
    draw when ``record_covariances`` (default: p <= 100); Lambda when ``record_loadings``
    (default: while all its draws take at most 2 GiB); the posterior means of G and R are always
    kept, averaged over every ``covariance_every``-th draw (default: 1, or more where their
    (effects + 1) p^2 k multiply-adds per draw would cost over 5 % of a sweep).
    ``record_genetic_values`` keeps every draw of the genetic values U = U_F Lambda + U_R on the
    levels of every K (num_chains x num_samples x levels x p numbers), for the intervals and draws
    of ``Run.predict``; their posterior means are always kept. ``chain_keys`` (num_chains PRNG
    keys) overrides the keys derived from ``seed``.

    ``store``: a directory; the draws are appended there after every chunk, with a checkpoint
    (``sj.open_run(store)`` reopens it, ``run.resume()`` continues it bit for bit). Ctrl-C stops
    at the end of the current chunk and returns the run so far (``run.complete`` is False).
    ``init``: "random" (``init_state``) or "factor_analysis" (start near a maximum-likelihood
    factor analysis, ``slamjax.start``). ``reorder_factors``: during the first half of warm-up,
    re-order factors by size and reset collinear ones every ``max(1, min(100, num_warmup // 10))``
    sweeps (``slamjax.warmup``). ``callback(run_progress: dict)`` is called after every chunk.
    ``record``: {name: fn(state, data) -> array}, user functions of the chain state recorded per
    draw (standardised scale, the sampler's coordinates); ``sj.open_run`` needs them again.

    ``devices``: split the traits over several devices (a count: the first that many of
    ``jax.devices()``, across every process of ``jax.distributed``; or a list of devices), and the
    chains over ``chain_groups`` groups of them (``slamjax._sharding``). The draws equal a
    one-device run's up to the order of floating-point sums. With several processes every
    process calls ``sample`` alike; process 0 prints and writes the store.

    ``dtype``: "float64" (the default) or "float32", the precision the sweeps compute in (an
    option for GPUs, where float32 is several times faster: ``slamjax._dtype``). The model's fixed
    decompositions are computed in float64 either way; recorded draws and posterior means are
    NumPy float64 arrays either way; ``resume`` continues in the run's dtype.
    """
    dtype = check_dtype(dtype)
    if not isinstance(model, Model):
        raise SlamjaxInputError(f"model: must be an sj.Model, got {type(model).__name__}")
    num_warmup = _check_count("num_warmup", num_warmup, 0)
    num_samples = _check_count("num_samples", num_samples, 1)
    thin = _check_count("thin", thin, 1)
    num_chains = _check_count("num_chains", num_chains, 1)
    chunk_size = min(num_samples, 100 if chunk_size is None else _check_count("chunk_size", chunk_size, 1))
    for name, value in (("record_genetic_values", record_genetic_values), ("reorder_factors", reorder_factors),
                        ("progress", progress), ("record_covariances", record_covariances),
                        ("record_loadings", record_loadings)):
        if not isinstance(value, (bool, np.bool_)) and not (value is None and name.startswith("record_") and
                                                            name != "record_genetic_values"):
            raise SlamjaxInputError(f"{name}: must be True or False{_OR_NONE.get(name, '')}, got {value!r}")
    if covariance_every is not None:
        covariance_every = _check_count("covariance_every", covariance_every, 1)
    if init not in ("random", "factor_analysis"):
        raise SlamjaxInputError(f"init: must be 'random' or 'factor_analysis', got {init!r}")
    if callback is not None and not callable(callback):
        raise SlamjaxInputError(f"callback: must be callable, got {type(callback).__name__}")
    user_functions = _check_record(record)
    sharding = trait_sharding(devices, chain_groups, model.data.shapes["p"], num_chains)
    progress = progress and is_writer()

    data = model.data
    plan, record_settings = plan_records(
        data, num_chains=num_chains, num_samples=num_samples, chunk_size=chunk_size, thin=thin,
        record_covariances=record_covariances, record_genetic_values=bool(record_genetic_values),
        record_loadings=record_loadings, covariance_every=covariance_every, extra=user_functions,
    )
    settings = dict(
        num_warmup=num_warmup, num_samples=num_samples, thin=thin, num_chains=num_chains, seed=seed,
        chunk_size=chunk_size, record_genetic_values=bool(record_genetic_values), init=init,
        reorder_factors=bool(reorder_factors), record=[name for name, _ in user_functions], dtype=dtype,
        **record_settings,
    )
    if progress:
        tqdm.write(f"slamjax: {plan.describe()}")
        if sharding is not None:
            tqdm.write(f"slamjax: {sharding.describe()}")
    if chain_keys is None:
        init_keys, chain_keys = jnp.split(jax.random.split(jax.random.key(seed), 2 * num_chains), 2)
    else:
        chain_keys = jnp.asarray(chain_keys)
        if chain_keys.shape[0] != num_chains:
            raise SlamjaxInputError(f"chain_keys: needs {num_chains} keys, got {chain_keys.shape[0]}")
        init_keys = jax.vmap(lambda key: jax.random.fold_in(key, -1 & 0x7FFFFFFF))(chain_keys)
    run_store = None
    if store is not None:
        run_store = RunStore(store)
        if is_writer():
            run_store.create(*model_to_plain(model), dict(settings=settings, version=_version()))
    if init == "factor_analysis":
        from .start import factor_analysis_start

        states = jax.vmap(factor_analysis_start, in_axes=(0, None))(init_keys, data)
    else:
        states = _initial_states(init_keys, data)
    states = cast_floats(states, dtype)  # started in float64 (as a float64 run), then cast
    accumulators = jax.tree.map(lambda x: jnp.zeros((num_chains,) + x.shape),
                                running_template(data, settings["record_loadings"]))
    sampler = _Sampler(model, settings, states, chain_keys, accumulators, store=run_store, record=user_functions,
                       sharding=sharding)
    return sampler.advance(progress, callback)


@eqx.filter_jit
def _initial_states(keys, data):
    """``init_state`` for every chain, compiled as one program (eagerly, each of its operations
    would be compiled on its own: about a second at n = 500, p = 100)."""
    return jax.vmap(init_state, in_axes=(0, None))(keys, data)


_RESERVED = {"Lambda", "B", "B_F", "h2", "resid_h2", "F_h2", "tot_Eta_prec", "G", "R", "P", "U", "Eta_mean", "B_M"}


def _check_record(record) -> tuple:
    """((name, fn), ...) sorted by name, from the user's {name: fn}."""
    if record is None:
        return ()
    if not isinstance(record, dict) or not all(isinstance(k, str) and callable(v) for k, v in record.items()):
        raise SlamjaxInputError("record: must be a dict {name: fn(state, data) -> array} of callables")
    clash = sorted(set(record) & _RESERVED)
    if clash:
        raise SlamjaxInputError(f"record: names {clash} are recorded by slamjax already; choose other names")
    return tuple(sorted(record.items()))


def _version() -> str:
    from . import __version__

    return __version__


@jax.jit
def _reorder_all(states, chain_keys, t):
    from .warmup import reorder_factors as reorder

    keys = jax.vmap(lambda key: jax.random.fold_in(jax.random.fold_in(key, 0x5EED), t))(chain_keys)
    return jax.vmap(reorder)(keys, states)


def _named_dims(m: Model, names, aligned: bool = False) -> dict[str, list[str]]:
    """Named dims (after chain and draw) of the recorded quantities among ``names``; user functions
    have none (they get ``name_i``). ``aligned``: Lambda, B_F and F_h2 after alignment ("factor")."""
    several = len(m.effect_names) > 1
    dims = {name: (_EFFECT_DIMS[name] if several and name in _EFFECT_DIMS else _DIMS[name])
            for name in names if name in _DIMS}
    link = m.observation.record_dims()
    dims.update({name: [dim for dim, _ in link[name]] for name in names if name in link})
    if aligned:
        dims = {name: [("factor" if d == "raw_factor" else d) for d in value] if name in _ALIGNED else value
                for name, value in dims.items()}
    return dims


def _coords(m: Model) -> dict[str, list[str]]:
    """Labels of the named dims of recorded draws."""
    return {
        "trait": m.trait_names,
        "trait2": m.trait_names,
        "factor": m.factor_names,
        "raw_factor": [f"raw_{name}" for name in m.factor_names],
        "fixed": m.fixed_names,
        "factor_fixed": m.factor_fixed_names,
        "effect": m.effect_names,
        "marker": m.marker_names,
        **{dim: list(labels) for dims in m.observation.record_dims().values() for dim, labels in dims},
    }


class _Sampler:
    """What a run needs to go on: chain states, keys, running-mean sums and counters."""

    def __init__(self, model, settings, states, chain_keys, accumulators, *, store=None, t=0, n_draws=0,
                 elapsed=0.0, draws=None, record=(), sharding=None):
        self.model, self.settings, self.store, self.record = model, settings, store, record
        self.sharding = sharding
        # the model's sampler data in the run's dtype (model.data itself for float64), on the run's devices
        self.data = cast_floats(model.data, settings["dtype"])
        if sharding is not None:  # global arrays laid out on the mesh (_sharding.py)
            self.data, states, chain_keys, accumulators = sharding.place(self.data, states, chain_keys, accumulators)
        self.states, self.chain_keys, self.accumulators = states, chain_keys, accumulators
        self.t, self.n_draws, self.elapsed = t, n_draws, elapsed
        self.chunks = [] if not draws else [draws]

    @property
    def total_sweeps(self) -> int:
        s = self.settings
        return s["num_warmup"] + s["num_samples"] * s["thin"]

    @property
    def complete(self) -> bool:
        return self.n_draws >= self.settings["num_samples"]

    def _reorder_points(self) -> list[int]:
        s = self.settings
        if not s["reorder_factors"]:
            return []
        every = max(1, min(100, s["num_warmup"] // 10))
        return list(range(every, s["num_warmup"] // 2 + 1, every))

    def _save(self, draws: dict | None, writer: BackgroundWriter) -> None:
        """Queues the chunk's draws and the checkpoint after it on the background writer: the
        arguments are taken now (JAX arrays do not change), the disk is written behind the device."""
        if self.store is None:
            return
        meta = dict(settings=dict(self.settings), version=_version(), sweeps_done=self.t, draws_done=self.n_draws,
                    complete=self.complete)
        progress = dict(t=self.t, n_draws=self.n_draws, elapsed=self.elapsed, settings=dict(self.settings))
        trees = (self.states, self.chain_keys, self.accumulators)
        if jax.process_count() > 1:  # every process gathers; process 0 writes
            keys = jax.random.wrap_key_data(to_host(jax.random.key_data(self.chain_keys)))
            trees = (to_host(self.states), keys, to_host(self.accumulators))
            if not is_writer():
                return
        writer.submit(_write_chunk, self.store, self.model, draws, trees, progress, meta)

    def advance(self, progress: bool, callback=None) -> "Run":
        """Runs the remaining warm-up and draws, chunk by chunk; Ctrl-C stops after a chunk. The
        store is written on a background thread while the next chunk runs."""
        s = self.settings
        data = self.data
        records = dict(record_fn=_record_function(self.settings, self.record), sharding=self.sharding)
        progress = progress and is_writer()
        sweeps_per_chunk = s["chunk_size"] * s["thin"]
        interrupted = []

        def on_interrupt(signum, frame):
            if interrupted:  # a second Ctrl-C stops at once
                raise KeyboardInterrupt
            interrupted.append(True)
            tqdm.write("slamjax: stopping after the current chunk (Ctrl-C again to stop at once)")

        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, on_interrupt)
        bar = tqdm(total=self.total_sweeps, initial=self.t, disable=not progress, unit="it",
                   desc="warm-up" if self.t < s["num_warmup"] else "sampling")
        started = time.perf_counter() - self.elapsed
        writer = BackgroundWriter()
        try:
            reorder_points = [t for t in self._reorder_points() if t > self.t]
            while self.t < s["num_warmup"] and not interrupted:
                stop = min([s["num_warmup"], self.t + sweeps_per_chunk, *reorder_points])
                with matmul_precision(s["dtype"]):  # float32: no TF32 in the compiled loop
                    self.states, failures = run_warmup(data, self.states, self.chain_keys, self.t, stop,
                                                       accumulators=self.accumulators, num_draws=s["chunk_size"],
                                                       **records)
                _raise_on_failure(to_host(failures), self.model.h2_draw == "collapsed", s["num_warmup"])
                if stop in reorder_points:
                    self.states = cast_floats(_reorder_all(self.states, self.chain_keys, stop), s["dtype"])
                    reorder_points.remove(stop)
                bar.update(stop - self.t)
                self.t = stop
                self.elapsed = time.perf_counter() - started
                self._save(None, writer)
                if callback is not None:
                    call_as_user(callback, self.progress())
            bar.set_description("sampling")
            while not self.complete and not interrupted:
                n_valid = min(s["chunk_size"], s["num_samples"] - self.n_draws)
                with matmul_precision(s["dtype"]):
                    self.states, self.accumulators, draws, failures = run_draws(
                        data, self.states, self.chain_keys, self.accumulators, self.t, n_valid, s["thin"], True,
                        self.n_draws, num_draws=s["chunk_size"], **records,
                    )
                draws, failures = to_host((draws, failures))
                _raise_on_failure(failures, self.model.h2_draw == "collapsed", s["num_warmup"])
                draws = {name: _on_host(value[:, :n_valid]) for name, value in draws.items()}
                self.chunks.append(draws)
                bar.update(n_valid * s["thin"])
                self.t += n_valid * s["thin"]
                self.n_draws += n_valid
                self.elapsed = time.perf_counter() - started
                self._save(draws, writer)
                if callback is not None:
                    call_as_user(callback, self.progress())
            writer.wait()
        finally:
            bar.close()
            writer.close()
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        if interrupted:  # stacklevel: advance, sample or resume, their float64 wrapper, the caller
            warnings.warn(
                f"interrupted after sweep {self.t} of {self.total_sweeps} ({self.n_draws} draws kept); "
                "run.resume() continues", stacklevel=4,
            )
        return self.to_run()

    def progress(self) -> dict:
        return dict(sweeps_done=self.t, total_sweeps=self.total_sweeps, draws_done=self.n_draws,
                    num_samples=self.settings["num_samples"], elapsed=self.elapsed)

    def all_draws(self) -> dict:
        if len(self.chunks) > 1:
            self.chunks = [{name: np.concatenate([c[name] for c in self.chunks], axis=1) for name in self.chunks[0]}]
        return self.chunks[0] if self.chunks else {}

    def to_run(self) -> "Run":
        every = self.settings["covariance_every"]
        counts = {name: -(-self.n_draws // every) for name in _LARGE_MEANS}  # draws 0, m, 2m, ...
        per_chain = {name: np.asarray(value) / max(counts.get(name, self.n_draws), 1)
                     for name, value in to_host(self.accumulators).items()}
        if "Lambda_aligned" in per_chain:  # rotated onto one frame across chains, then to varimax
            names = ("Lambda_aligned", "F_h2_aligned", "B_F_aligned")
            combined = combine_aligned_means(*(per_chain[name] for name in names))
            per_chain.update({name: value[None] for name, value in zip(names, combined)})
        draws = self.all_draws()
        if "marker_pip" in per_chain and "Lambda" in draws:
            matched = _match_factors_to_first_chain(draws["Lambda"])
            for name in ("marker_pip", "window_pip"):
                per_chain[name] = np.take_along_axis(per_chain[name], matched[:, None, :], axis=2)
        running = {name: value.mean(axis=0) for name, value in per_chain.items()}
        return Run(model=self.model, draws=draws, running_means=running, states=self.states,
                   settings=dict(self.settings), elapsed=self.elapsed, sampler=self)


def _on_host(value: np.ndarray) -> np.ndarray:
    """A chunk's draws as the host keeps them: float32 draws (of a float32 run) as float64."""
    return value.astype(np.float64) if value.dtype == np.float32 else value


def _on_host_shape(shape: jax.ShapeDtypeStruct) -> jax.ShapeDtypeStruct:
    """The shape and dtype of a draw on the host (``_on_host``)."""
    return jax.ShapeDtypeStruct(shape.shape, np.float64) if shape.dtype == np.float32 else shape


def _write_chunk(store: RunStore, model: Model, draws: dict | None, trees: tuple, progress: dict, meta: dict):
    """Appends a chunk's draws (None: a warm-up chunk) and replaces the checkpoint after it (on
    ``BackgroundWriter``'s thread: in order, one at a time)."""
    if draws is not None:
        store.append_draws(draws, first=not store.draws_path.exists(), dims=_named_dims(model, draws),
                           coords=_coords(model))
    store.write_checkpoint(checkpoint_to_plain(*trees, progress), meta)


def _match_factors_to_first_chain(Lambda: np.ndarray) -> np.ndarray:
    """For every chain, the position of its factor matched to each factor of chain 0, (chains, k).

    Without the rotation step (spike-and-slab marker priors) a factor keeps its position within a
    chain, but chains may order the same factors differently; pooled by raw position, a marker that
    every chain includes on "its" factor would show an inclusion probability of 1 / chains. Factors
    are matched by the absolute correlation of their mean loadings (one assignment per chain).
    """
    from scipy.optimize import linear_sum_assignment

    means = Lambda.mean(axis=1)  # (chain, k, p)
    chains, k, _ = means.shape
    matched = np.tile(np.arange(k), (chains, 1))
    centred = means - means.mean(axis=2, keepdims=True)
    unit = centred / np.maximum(np.linalg.norm(centred, axis=2, keepdims=True), 1e-300)
    for c in range(1, chains):
        similarity = np.abs(unit[0] @ unit[c].T)  # (chain 0's factor, chain c's factor)
        rows, columns = linear_sum_assignment(-similarity)
        matched[c, rows] = columns
    return matched


@float64
def open_run(path, record: dict | None = None, devices=None, chain_groups: int = 1) -> "Run":
    """Reopens a run written with ``sj.sample(..., store=path)``: its draws so far, and a
    ``resume`` that finishes it (or extends it) exactly as an uninterrupted run would have.
    ``record``: the user functions the run was started with, if any. ``devices``,
    ``chain_groups``: where ``resume`` runs, as for ``sj.sample`` (a run may move between one
    device and several; it then continues up to the order of floating-point sums).

    The store holds plain data only (JSON, npz, zarr; no pickles): opening one runs no code from
    it, and a damaged or edited store is refused with a ``SlamjaxInputError`` naming the file."""
    run_store = RunStore(path)
    model = _stored_model(run_store)
    checkpoint = run_store.read_checkpoint()
    where = str(run_store.path / CHECKPOINT)
    progress = _checked_progress(checkpoint_progress(checkpoint, where), where)
    settings = progress["settings"]
    user_functions = _check_record(record)
    if [name for name, _ in user_functions] != sorted(settings["record"]):
        raise SlamjaxInputError(
            f"open_run: the run records user functions {sorted(settings['record'])}; pass them again: "
            "record={name: fn}"
        )
    template = _checkpoint_template(model, settings)
    trees = checkpoint_from_plain(checkpoint, template, where)
    record_fn = _record_function(settings, user_functions)
    one_chain = lambda tree: jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), tree)  # noqa: E731
    draw_shapes = jax.eval_shape(record_fn, one_chain(template["states"]), cast_floats(model.data, settings["dtype"]),
                                 one_chain(template["accumulators"]), 0)[0]
    draw_shapes = jax.tree.map(_on_host_shape, draw_shapes)  # float32 draws are kept as float64
    draws = run_store.read_draws(progress["n_draws"], settings["num_chains"], draw_shapes)
    sampler = _Sampler(
        model, settings, jax.tree.map(jnp.asarray, trees["states"]),
        jax.random.wrap_key_data(jnp.asarray(trees["chain_keys"])), jax.tree.map(jnp.asarray, trees["accumulators"]),
        store=run_store, t=progress["t"], n_draws=progress["n_draws"], elapsed=progress["elapsed"], draws=draws,
        record=user_functions,
        sharding=trait_sharding(devices, chain_groups, model.data.shapes["p"], settings["num_chains"]),
    )
    return sampler.to_run()


def _stored_model(run_store: RunStore) -> Model:
    """The model rebuilt from model.json and model.npz; its own checks name the file."""
    import inspect

    tree, arrays = run_store.read_model()
    where = str(run_store.path / MODEL_JSON)
    names = set(inspect.signature(Model).parameters)
    arguments = model_arguments_from_plain(tree, arrays, names, where)
    try:
        return Model(**arguments)
    except SlamjaxInputError as error:
        raise SlamjaxInputError(f"open_run: {where}: the stored model cannot be rebuilt: {error}") from None


_SETTING_TYPES = dict(
    num_warmup=int, num_samples=int, thin=int, num_chains=int, seed=int, chunk_size=int, record_covariances=bool,
    record_loadings=bool, covariance_every=int,
    record_genetic_values=bool, init=str, reorder_factors=bool, record=list, dtype=str,
)


_SETTINGS_ADDED = dict(record_loadings=True, covariance_every=1, dtype="float64")


def _checked_progress(progress: dict, where: str) -> dict:
    """The counters and settings of a checkpoint, refused unless complete, typed and consistent."""
    def fail(problem):
        raise SlamjaxInputError(f"open_run: {where}: {problem}; the store was damaged or edited by hand")

    def is_a(value, kind):
        return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))

    if set(progress) != {"t", "n_draws", "elapsed", "settings"}:
        fail(f"its progress must have the keys ['elapsed', 'n_draws', 'settings', 't'], has {sorted(progress)}")
    settings = progress["settings"]
    if isinstance(settings, dict):  # written before these settings existed: what those runs recorded
        for name, value in _SETTINGS_ADDED.items():
            settings.setdefault(name, value)
    if not isinstance(settings, dict) or set(settings) != set(_SETTING_TYPES):
        fail(f"the settings must have the keys {sorted(_SETTING_TYPES)}")
    wrong = [name for name, kind in _SETTING_TYPES.items() if not is_a(settings[name], kind)]
    if wrong or not all(isinstance(name, str) for name in settings["record"]):
        fail(f"the settings {wrong or ['record']} have the wrong type")
    minimum = dict(num_warmup=0, num_samples=1, thin=1, num_chains=1, chunk_size=1, covariance_every=1)
    if any(settings[name] < low for name, low in minimum.items()) or settings["init"] not in (
        "random", "factor_analysis"
    ) or settings["dtype"] not in DTYPES:
        fail(f"a setting is out of range: {settings}")
    t, n_draws, elapsed = progress["t"], progress["n_draws"], progress["elapsed"]
    if not (is_a(t, int) and is_a(n_draws, int) and isinstance(elapsed, (int, float)) and elapsed >= 0):
        fail("t and n_draws must be integers, elapsed a number of seconds")
    if n_draws:
        consistent = t == settings["num_warmup"] + n_draws * settings["thin"]
    else:
        consistent = 0 <= t <= settings["num_warmup"]
    if not (0 <= n_draws <= settings["num_samples"] and consistent):
        fail(f"sweep {t} and {n_draws} draws do not fit the settings (warm-up {settings['num_warmup']}, "
             f"{settings['num_samples']} draws, thin {settings['thin']})")
    return progress


def _record_function(settings: dict, user_functions: tuple):
    """The record function of a run with these settings (``posterior.record_function``)."""
    s = settings
    return record_function(s["record_covariances"], s["record_genetic_values"], user_functions, s["record_loadings"],
                           s["covariance_every"])


def _checkpoint_template(model: Model, settings: dict) -> dict:
    """Shapes and dtypes of a checkpoint's chain states, keys and running-mean sums for ``model``."""
    num_chains = settings["num_chains"]

    def make():
        keys = jax.random.split(jax.random.key(0), num_chains)
        states = cast_floats(jax.vmap(init_state, in_axes=(0, None))(keys, model.data), settings["dtype"])
        sums = jax.tree.map(lambda x: jnp.zeros((num_chains,) + x.shape),
                            running_template(model.data, settings["record_loadings"]))
        return dict(states=states, chain_keys=jax.random.key_data(keys), accumulators=sums)

    return jax.eval_shape(make)


def _upper_triangle(p: int):
    """(trait, trait2) booleans: True on and above the diagonal."""
    import xarray as xr

    return xr.DataArray(np.triu(np.ones((p, p), dtype=bool)), dims=("trait", "trait2"))


def _select(names: list, wanted, what: str) -> np.ndarray:
    """Positions of ``wanted`` (None: all) among ``names``; unknown names are refused."""
    if wanted is None:
        return np.arange(len(names))
    if isinstance(wanted, (str, bytes)) or np.ndim(wanted) == 0:
        wanted = [wanted]
    wanted = list(wanted)
    position = {name: i for i, name in enumerate(names)}
    unknown = [name for name in wanted if not isinstance(name, Hashable) or name not in position]
    if unknown:
        raise SlamjaxInputError(
            f"predict(levels): {len(unknown)} names are not {what} of the model (e.g. {unknown[:5]})"
        )
    return np.array([position[name] for name in wanted], dtype=int)


class Run:
    """The result of ``sj.sample``: draws, posterior means and diagnostics, with names."""

    @float64
    def __init__(
        self, model: Model, draws: dict, running_means: dict, states, settings: dict, elapsed: float, sampler=None
    ):
        self._sampler = sampler
        self.model = model
        self.settings = settings
        self.elapsed = elapsed
        self.final_states = states
        m = model
        self.draws = {
            name: to_original_scale(name, np.array(value), m.Y_mean, m.Y_scale) for name, value in draws.items()
        }
        re = m.random_effect
        several = len(m.effect_names) > 1
        G = to_original_scale("G", running_means["G"], m.Y_mean, m.Y_scale)  # (R, p, p)
        R = to_original_scale("R", running_means["R"], m.Y_mean, m.Y_scale)
        U = to_original_scale("U", np.asarray(re.to_levels(jnp.asarray(running_means["U"]))), m.Y_mean, m.Y_scale)
        U_blocks = np.split(U, np.cumsum(re.sizes)[:-1], axis=0)
        self._means = {
            "G": dict(zip(m.effect_names, G)) if several else G[0],
            "R": R,
            "P": G.sum(axis=0) + R,
            "U": dict(zip(m.effect_names, U_blocks)) if several else U_blocks[0],
            "Eta_mean": to_original_scale(
                "Eta_mean", np.asarray(re.unrotate(jnp.asarray(running_means["Eta_mean"]))), m.Y_mean, m.Y_scale
            ),
        }
        self._aligned_means = {}  # without Lambda draws: running means of the aligned factors
        if "Lambda_aligned" in running_means:
            F_h2 = np.asarray(running_means["F_h2_aligned"])
            self._aligned_means = dict(
                Lambda=to_original_scale("Lambda", np.asarray(running_means["Lambda_aligned"]), m.Y_mean, m.Y_scale),
                F_h2=F_h2 if several else F_h2[0], B_F=np.asarray(running_means["B_F_aligned"]),
            )
        self._markers = {name: np.asarray(running_means[name]) for name in
                         ("marker_trait_effect", "marker_pip", "window_pip", "marker_trait_pip") if name in running_means}
        if "marker_trait_effect" in self._markers:
            self._markers["marker_trait_effect"] = self._markers["marker_trait_effect"] * np.asarray(m.Y_scale)
        self._datatree = None
        self._aligned = None

    def aligned_factors(self) -> dict[str, np.ndarray]:
        """Draws of the factor-indexed quantities after alignment, with one label per factor:
        {"Lambda": (chain, draw, factor, trait), "B_F": (chain, draw, factor_fixed, factor),
        "F_h2": (chain, draw, factor) or (chain, draw, effect, factor)}.

        The sampler draws the factors' rotation, so a raw factor position means different factors
        in different draws and chains. Each draw of Lambda (standardised scale) is rotated to its
        varimax solution and matched in order and sign to the mean (``sj.align_loadings``): an
        orthogonal T per draw (``factor_alignment``), applied to the whole draw: Lambda -> T Lambda,
        B_F -> B_F T', and F_h2 -> diag(T diag(F_h2) T'), the variance share of each aligned factor
        (exact; a weighted mean of the raw shares, off the grid; see ``slamjax.alignment``).
        ``posterior_mean``, ``posterior`` and ``sj.plot.loadings`` report these. G, R and P are
        computed per draw from the raw draws and do not depend on the alignment.
        """
        if self._aligned is None:
            if not self.settings["record_loadings"]:
                raise SlamjaxInputError(
                    "the run did not record the draws of Lambda (record_loadings=False, or chosen by size: see "
                    "run.record_plan), which aligning the factors needs; sample again with record_loadings=True "
                    "(and thin, to keep fewer draws)"
                )
            if "Lambda" not in self.draws or not self.draws["Lambda"].size:
                raise SlamjaxInputError("the run has no draws yet; resume() it to record some")
            scale = np.asarray(self.model.Y_scale, dtype=float)
            Lambda, T = factor_alignment(self.draws["Lambda"] / scale)
            self._aligned = dict(
                Lambda=Lambda * scale, B_F=align_factor_effects(T, self.draws["B_F"]),
                F_h2=align_factor_h2(T, self.draws["F_h2"]), T=T,
            )
            if "B_M" in self.draws:
                self._aligned["B_M"] = align_factor_effects(T, self.draws["B_M"])
        return {name: value for name, value in self._aligned.items() if name != "T"}

    def factor_alignment(self):
        """The orthogonal transformation T of every draw, (chain, draw, factor, raw_factor):
        aligned Lambda = T @ raw Lambda (``run.draws["Lambda"]``), aligned factors = F T'. Apply
        it to functions of the raw factors you record yourself (``sj.sample(record=...)``)."""
        import xarray as xr

        self.aligned_factors()
        coords = self.coords
        return xr.DataArray(
            self._aligned["T"], dims=("chain", "draw", "factor", "raw_factor"),
            coords={"factor": coords["factor"], "raw_factor": coords["raw_factor"]}, name="T",
        )

    def aligned_loadings(self):
        """Draws of Lambda (chain, draw, factor, trait), each rotated to its varimax solution and
        matched in order and sign to their mean (``sj.align_loadings``, on the standardised
        scale), with B_F and F_h2 transformed alike (``aligned_factors``). The sampler draws the
        factors' rotation, so raw draws of Lambda are comparable only after this;
        ``posterior_mean("Lambda")`` and ``sj.plot.loadings`` use it."""
        import xarray as xr

        coords = self.coords
        return xr.DataArray(
            self.aligned_factors()["Lambda"], dims=("chain", "draw", "factor", "trait"),
            coords={"factor": coords["factor"], "trait": coords["trait"]}, name="Lambda",
        )

    @property
    def coords(self) -> dict[str, list[str]]:
        return _coords(self.model)

    @property
    def datatree(self):
        """All recorded draws as an arviz DataTree (group ``posterior``), with Lambda, B_F and F_h2
        aligned (``aligned_factors``: "factor0" is one factor in all three, in every draw and
        chain). Draws of the genetic values (``record_genetic_values``) are left out: see
        ``predict(draws=True)``. The raw draws are ``run.draws`` (their factor positions are the
        sampler's, "raw_factor0", ... in a run's store). Building it aligns the factor draws (a
        varimax per draw: seconds, or minutes for thousands of draws of hundreds of traits);
        ``summary`` of other quantities does without."""
        if self._datatree is None:
            self._datatree = self._posterior_tree()
        return self._datatree

    def _posterior_tree(self, names=None):
        """An arviz DataTree of the recorded draws ``names`` (None: all), Lambda, B_F and F_h2 aligned."""
        import arviz as az

        draws = {name: value for name, value in self.draws.items()
                 if value.size and name != "U" and (names is None or name in names)
                 and (self.settings["record_loadings"] or name not in _ALIGNED)}  # raw factor draws mislead
        if any(name in draws for name in _ALIGNED):
            aligned = self.aligned_factors()
            draws.update({name: aligned[name] for name in _ALIGNED if name in draws})
        dims = _named_dims(self.model, draws, aligned=True)
        used = {d for name in dims for d in dims[name]}
        coords = {d: c for d, c in self.coords.items() if d in used}
        return az.from_dict({"posterior": draws}, dims=dims, coords=coords)

    @property
    def posterior(self):
        """The posterior group: dims (chain, draw, ...) with named trait, factor and fixed-effect
        coords; Lambda, B_F and F_h2 aligned (see ``datatree``)."""
        return self.datatree["posterior"]

    def posterior_mean(self, name: str):
        """Posterior mean of "Lambda", "B_F" and "F_h2" (of the aligned draws, see
        ``aligned_factors``: the same factor labels in all three; a run that did not record Lambda
        per draw keeps running means instead, of each draw rotated onto the mean of the draws
        before it and the result rotated to varimax: ``alignment.combine_aligned_means``), "B", "G", "R", "P", "h2",
        "resid_h2", "tot_Eta_prec", "U" (genetic values of the levels of K), "Eta_mean" (fitted
        latent traits, rows in Y's order), "genetic_correlation" or "residual_correlation" (mean
        of the per-draw correlations when G and R are recorded per draw).

        With several random effects, "G" and "U" are dicts keyed by the grouping variable and
        "h2" and "F_h2" (variance proportions) are DataFrames traits (factors) x grouping variables.
        """
        m = self.model
        traits = m.trait_names
        several = len(m.effect_names) > 1
        if name in ("G", "R", "P"):
            value = self._means[name]
            if isinstance(value, dict):
                return {g: pd.DataFrame(v, index=traits, columns=traits) for g, v in value.items()}
            return pd.DataFrame(value, index=traits, columns=traits)
        if name == "U":
            value = self._means["U"]
            if isinstance(value, dict):
                return {g: pd.DataFrame(v, index=m.effect_levels[g], columns=traits) for g, v in value.items()}
            return pd.DataFrame(value, index=m.level_names, columns=traits)
        if name == "Eta_mean":  # rows in Y's order
            names = m.individual_names
            return pd.DataFrame(self._means["Eta_mean"][m.Y_rows], index=[names[i] for i in m.Y_rows],
                                columns=traits)
        if name in ("genetic_correlation", "residual_correlation"):
            return self._correlation(name)
        if several and name in ("h2", "resid_h2", "F_h2"):
            draws = self.aligned_factors()[name] if name == "F_h2" else self.draws[name]
            return self._frame(name, draws.mean(axis=(0, 1)))
        if name in self._aligned_means:  # running means of the aligned factors (no Lambda draws)
            return self._frame(name, self._aligned_means[name])
        if name in _ALIGNED and name != "B_M":
            self.aligned_factors()  # says so when the run did not record Lambda
        if name not in self.draws:
            known = sorted(set(self.draws) | {"G", "R", "P", "U", "Eta_mean"})
            raise SlamjaxInputError(f"posterior_mean: unknown quantity {name!r}; choose one of {known}")
        draws = self.aligned_factors()[name] if name in _ALIGNED else self.draws[name]
        return self._frame(name, draws.mean(axis=(0, 1)))

    def _frame(self, name: str, mean: np.ndarray):
        """A posterior mean with its labels: a float, a Series, or a DataFrame (with several random
        effects, h2, resid_h2 and F_h2 are traits (factors) x grouping variables)."""
        m = self.model
        if len(m.effect_names) > 1 and name in ("h2", "resid_h2", "F_h2"):  # (R, p) or (R, k)
            columns = m.trait_names if name != "F_h2" else m.factor_names
            return pd.DataFrame(mean.T, index=columns, columns=m.effect_names)
        if mean.ndim == 0:  # a scalar (e.g. a link's residual variance)
            return float(mean)
        index = [self.coords[d] for d in _named_dims(m, [name], aligned=True)[name]]
        if mean.ndim == 1:
            return pd.Series(mean, index=index[0], name=name)
        return pd.DataFrame(mean, index=index[0], columns=index[1])

    def _correlation(self, name: str):
        """Posterior mean of the per-draw correlation matrix (G of each random effect, or R) when
        the covariances were recorded per draw; otherwise the correlation of the posterior mean."""
        m = self.model
        source = "G" if name == "genetic_correlation" else "R"

        def correlation(C):  # a draw with zero variance (h2 = 0, no loadings) counts as correlation 0
            sd = np.sqrt(np.diagonal(C, axis1=-2, axis2=-1))
            scale = sd[..., :, None] * sd[..., None, :]
            R = np.divide(C, scale, out=np.zeros_like(C), where=scale > 0)
            return R + (np.eye(C.shape[-1]) - R * np.eye(C.shape[-1]))

        if source in self.draws:
            per_draw = self.draws[source]  # (chain, draw, [effect,] p, p)
            value = correlation(per_draw).mean(axis=(0, 1))
        else:
            value = np.asarray(list(self._means[source].values())) if isinstance(self._means[source], dict) else (
                self._means[source])
            value = correlation(value)
        frame = lambda C: pd.DataFrame(C, index=m.trait_names, columns=m.trait_names)  # noqa: E731
        if value.ndim == 3:
            return {g: frame(C) for g, C in zip(m.effect_names, value)}
        return frame(value)

    @float64
    def predict(
        self,
        what: str = "genetic",
        *,
        effect: str | None = None,
        levels=None,
        fixed: bool = False,
        interval: float | None = None,
        draws: bool = False,
        genotypes=None,
    ):
        """Genetic values of the levels of K, or fitted values of the individuals, on the original scale.

        ``genotypes`` (a model with markers): genetic values of new individuals from their marker
        genotypes alone, M_new B_M Lambda (``predict_from_genotypes``; ``fixed``, ``interval`` and
        ``draws`` apply), plus their relationship-based part when they are levels of K.

        ``what="genetic"``: posterior means of the genetic values U = U_F Lambda + U_R of every level
        of one random effect's K (``effect``: its grouping variable, default the first), including
        levels without data, which are predicted through their relationships in K. ``fixed=True``
        adds the trait intercept (the first fixed effect, per draw) to them.
        ``what="fitted"``: posterior means of the fitted latent traits X B + F Lambda + Z U_R of
        every individual (everything but the residual), including cells that are missing in Y;
        rows in Y's order (``model.Y_rows``; data's order may differ with a formula).

        ``levels`` keeps these levels (or individuals) only, in the order given. The means come from
        the running means of the run. Posterior intervals and draws need the genetic values kept per
        draw (``sj.sample(..., record_genetic_values=True)``): ``interval=0.9`` returns a dict of
        DataFrames {"mean", "lower", "upper"} with equal-tailed intervals over all chains and
        draws; ``draws=True`` returns an xarray DataArray (chain, draw, level, trait).
        Otherwise a DataFrame (levels or individuals x traits).
        """
        m = self.model
        if genotypes is not None:
            if what != "genetic" or levels is not None:
                raise SlamjaxInputError("predict: genotypes predict genetic values of the genotyped individuals; "
                                        "leave what='genetic' and levels=None")
            return self.predict_from_genotypes(genotypes, effect=effect, fixed=fixed, interval=interval, draws=draws)
        if what not in ("genetic", "fitted"):
            raise SlamjaxInputError(f"predict: what must be 'genetic' or 'fitted', got {what!r}")
        if not isinstance(fixed, (bool, np.bool_)) or not isinstance(draws, (bool, np.bool_)):
            raise SlamjaxInputError(f"predict: fixed and draws must be True or False, got {fixed!r}, {draws!r}")
        if interval is not None:
            if isinstance(interval, bool) or not isinstance(interval, (float, int, np.floating, np.integer)) or not (
                0.0 < float(interval) < 1.0
            ):
                raise SlamjaxInputError(f"predict: interval must be a probability in (0, 1), got {interval!r}")
            if draws:
                raise SlamjaxInputError("predict: ask for either interval or draws, not both")
        if what == "fitted":
            if effect is not None or fixed:
                raise SlamjaxInputError(
                    "predict: effect and fixed apply to what='genetic' only (fitted values hold every effect)"
                )
            if interval is not None or draws:
                raise SlamjaxInputError(
                    "predict: intervals and draws are kept for genetic values only, not for fitted values"
                )
            names = list(m.individual_names)
            selected = m.Y_rows if levels is None else _select(names, levels, "individuals")
            mean = self._means["Eta_mean"][selected]
            return pd.DataFrame(mean, index=pd.Index([names[i] for i in selected]), columns=m.trait_names)

        if effect is None:
            effect = m.effect_names[0]
        if effect not in m.effect_names:
            raise SlamjaxInputError(
                f"predict: unknown effect {effect!r}; the random effects are {m.effect_names}"
            )
        which = m.effect_names.index(effect)
        names = list(m.level_names) if len(m.effect_names) == 1 else list(m.effect_levels[effect])
        selected = _select(names, levels, f"levels of {effect!r}")
        index = pd.Index([names[i] for i in selected])
        if (interval is not None or draws) and "U" not in self.draws:
            raise SlamjaxInputError(
                "predict: intervals and draws of genetic values need them recorded per draw; "
                "re-run with sj.sample(..., record_genetic_values=True)"
            )
        mean = self._means["U"][effect] if isinstance(self._means["U"], dict) else self._means["U"]
        mean = mean[selected]
        intercept_draws = self.draws["B"][:, :, 0, :]  # (chain, draw, p), original scale
        if fixed:
            mean = mean + intercept_draws.mean(axis=(0, 1))[None, :]
        if interval is None and not draws:
            return pd.DataFrame(mean, index=index, columns=m.trait_names)

        offset = int(np.sum(m.random_effect.sizes[:which]))
        block = self.draws["U"][:, :, offset : offset + len(names)][:, :, selected]  # (chain, draw, levels, p)
        if fixed:
            block = block + intercept_draws[:, :, None, :]
        if draws:
            import xarray as xr

            return xr.DataArray(
                block,
                dims=("chain", "draw", "level", "trait"),
                coords={
                    "chain": np.arange(block.shape[0]), "draw": np.arange(block.shape[1]),
                    "level": list(index), "trait": m.trait_names,
                },
                name="genetic_values",
            )
        pooled = block.reshape((-1,) + block.shape[2:])
        lower, upper = np.quantile(pooled, [(1.0 - interval) / 2.0, (1.0 + interval) / 2.0], axis=0)
        return {
            "mean": pd.DataFrame(mean, index=index, columns=m.trait_names),
            "lower": pd.DataFrame(lower, index=index, columns=m.trait_names),
            "upper": pd.DataFrame(upper, index=index, columns=m.trait_names),
        }

    def _need_markers(self, what: str):
        if self.model.markers is None:
            raise SlamjaxInputError(f"{what}: the model has no markers; build it with sj.Model(..., markers=genotypes)")

    def marker_effects(self) -> pd.DataFrame:
        """Posterior mean effect of one more copy of each marker's counted allele on each trait,
        sum_l B_M[j, l] Lambda[l, t] (markers x traits, the traits' units); from the running
        mean of B_M Lambda (kept up to ``posterior.TRAIT_PIP_MAX`` markers x traits)."""
        self._need_markers("marker_effects")
        if "marker_trait_effect" not in self._markers:
            raise SlamjaxInputError("marker_effects: too many markers x traits to average them on the device; "
                                    "use run.draws['B_M'] with the draws of Lambda")
        m = self.model
        return pd.DataFrame(self._markers["marker_trait_effect"], index=m.marker_names,
                            columns=m.trait_names)

    def inclusion_probabilities(self, by: str = "trait") -> pd.DataFrame:
        """Posterior inclusion probabilities of a spike-and-slab marker prior (BayesC, BayesR).

        ``by="factor"``: P(B_M[j, l] != 0), markers x factors (the raw factor labels of chain 0: with
        these priors the factors are not rotated during sampling, and each other chain's factors are
        matched to chain 0's by their mean loadings before pooling). ``by="trait"``: P(the marker is in the model of a
        factor that explains at least ``posterior.TRAIT_PIP_MIN_SHARE`` (1 %) of the trait's
        variance), markers x traits. ``by="window"``: P(any marker of the window is included on
        the factor), windows x factors (``sj.markers.Markers(map=..., window=...)``).
        """
        self._need_markers("inclusion_probabilities")
        m = self.model
        names = {"factor": "marker_pip", "trait": "marker_trait_pip", "window": "window_pip"}
        if by not in names:
            raise SlamjaxInputError(f"inclusion_probabilities: by must be 'factor', 'trait' or 'window', got {by!r}")
        if not m.markers.prior.spike:
            raise SlamjaxInputError(
                f"inclusion_probabilities: the {type(m.markers.prior).__name__} prior has no spike at 0, so every "
                "effect is included; use marker_prior='bayesc' or 'bayesr' for mapping"
            )
        if names[by] not in self._markers:
            raise SlamjaxInputError("inclusion_probabilities: too many markers x traits to average them by trait; "
                                    "use by='factor'")
        values = self._markers[names[by]]  # pooled over chains
        index = m.markers.window_names if by == "window" else m.marker_names
        columns = m.trait_names if by == "trait" else m.factor_names
        return pd.DataFrame(values, index=index, columns=columns)

    def cis_effects(self) -> pd.DataFrame:
        """The cis effects of a model observed through ``sj.obs.CisGenotypes`` (alone or in
        ``Combined``): one row per (gene, local marker) with mean, sd, 90 % interval and the
        posterior probability of the effect's sign. The trans effects are the factors':
        ``posterior_mean("Lambda")`` says which factors load on each gene."""
        from .observation.cis import CisGenotypes
        from .observation.combined import Combined

        observation = self.model.observation
        if isinstance(observation, CisGenotypes):
            return observation.cis_table(self.draws["cis_effect"])
        if isinstance(observation, Combined):
            for name, part in zip(observation.names, observation.parts):
                if isinstance(part, CisGenotypes):
                    return part.cis_table(self.draws[f"{name}.cis_effect"])
        raise SlamjaxInputError("cis_effects: the model is not observed through sj.obs.CisGenotypes")

    def predict_from_genotypes(self, genotypes, *, effect: str | None = None, fixed: bool = False,
                               interval: float | None = None, draws: bool = False):
        """Genetic values of individuals from their genotypes: (g - training means) B_M Lambda per
        draw, plus U of the individuals that are levels of K (``effect``), on the original scale.

        ``genotypes``: individuals x markers (a DataFrame with the model's marker names as columns,
        or an array with its markers in order). Returns a DataFrame of posterior means, or with
        ``interval`` a dict {"mean", "lower", "upper"}, or with ``draws`` an xarray DataArray
        (chain, draw, individual, trait). Intervals and draws need B_M kept per draw (up to
        ``posterior.MARKER_DRAWS_MAX`` markers x factors) and, for individuals in K, the genetic
        values (``record_genetic_values=True``).
        """
        self._need_markers("predict")
        m = self.model
        names = m.marker_names
        if isinstance(genotypes, pd.DataFrame):
            absent = pd.Index(names).difference(genotypes.columns.astype(str))
            if len(absent):
                raise SlamjaxInputError(f"genotypes: {len(absent)} of the model's markers are missing (e.g. {list(absent[:5])})")
            index = genotypes.index
            values = genotypes.set_axis(genotypes.columns.astype(str), axis=1)[names].to_numpy(dtype=float)
        else:
            values = np.asarray(genotypes, dtype=float)
            if values.ndim != 2 or values.shape[1] != len(names):
                raise SlamjaxInputError(f"genotypes: must have the model's {len(names)} markers as columns, got shape {values.shape}")
            index = pd.RangeIndex(values.shape[0])
        if np.isnan(values).any():
            raise SlamjaxInputError("genotypes: contains missing values; impute them first")
        centred = values - m.markers.means[None, :]
        want_draws = interval is not None or draws
        if want_draws and "B_M" not in self.draws:
            raise SlamjaxInputError("predict: intervals and draws need the marker effects kept per draw, which this "
                                    "model has too many of (markers x factors); ask for posterior means only")
        level_names = list(m.level_names) if len(m.effect_names) == 1 else list(m.effect_levels[effect or m.effect_names[0]])
        level_of = {str(level): level for level in level_names}
        in_K = [str(i) in level_of for i in index]
        K_levels = [level_of[str(i)] for i in index if str(i) in level_of]
        if want_draws:
            block = np.einsum("im,cdmk,cdkp->cdip", centred, self.draws["B_M"], self.draws["Lambda"])
            if any(in_K):
                genetic = self.predict(effect=effect, levels=K_levels, draws=True)
                block[:, :, np.flatnonzero(in_K)] += np.asarray(genetic)
            if fixed:
                block = block + self.draws["B"][:, :, 0, None, :]
            if draws:
                import xarray as xr

                return xr.DataArray(block, dims=("chain", "draw", "individual", "trait"),
                                    coords={"individual": list(index), "trait": m.trait_names}, name="genetic_values")
            pooled = block.reshape((-1,) + block.shape[2:])
            lower, upper = np.quantile(pooled, [(1.0 - interval) / 2.0, (1.0 + interval) / 2.0], axis=0)
            frame = lambda x: pd.DataFrame(x, index=index, columns=m.trait_names)  # noqa: E731
            return {"mean": frame(pooled.mean(axis=0)), "lower": frame(lower), "upper": frame(upper)}
        mean = centred @ self.marker_effects().to_numpy()
        if any(in_K):
            genetic = self.predict(effect=effect, levels=K_levels)
            mean[np.flatnonzero(in_K)] += genetic.to_numpy()
        if fixed:
            mean = mean + self.draws["B"][:, :, 0, :].mean(axis=(0, 1))[None, :]
        return pd.DataFrame(mean, index=index, columns=m.trait_names)

    @property
    def complete(self) -> bool:
        """False for a run stopped early (Ctrl-C, a crash with a store): ``resume()`` finishes it."""
        return self._sampler is None or self._sampler.complete

    @property
    def store(self):
        """The run's directory, or None when it lives in memory only."""
        return None if self._sampler is None or self._sampler.store is None else self._sampler.store.path

    @float64
    def resume(self, num_samples: int | None = None, progress: bool = True, callback=None) -> "Run":
        """Finishes a run that was cut short, as planned; with ``num_samples``, adds that many draws
        to it. Continues exactly: the draws equal those of one uninterrupted run. Updates this
        ``Run`` in place and returns it."""
        sampler = self._sampler
        if sampler is None:
            raise SlamjaxInputError("resume: this run was not made by sj.sample or sj.open_run")
        if num_samples is not None:
            sampler.settings["num_samples"] += _check_count("num_samples", num_samples, 1)
        elif sampler.complete:
            raise SlamjaxInputError(
                "resume: the run is complete; pass num_samples=N to add N draws to it"
            )
        if sampler.store is not None:  # the new plan is on disk before any chunk runs
            writer = BackgroundWriter()
            try:
                sampler._save(None, writer)
            finally:
                writer.close()
        self.__dict__.update(sampler.advance(progress, callback).__dict__)
        return self

    def summary(self, var_names=None, ci_prob: float = 0.9) -> pd.DataFrame:
        """mean, sd, equal-tailed interval, ess_bulk, ess_tail and r_hat of recorded parameters.

        By default the quantities that do not depend on factor labels: h2, G (when recorded) and
        B. Factor-level draws (Lambda, F_h2, B_F) are summarised after alignment
        (``aligned_factors``), which is fitted to these very draws, so their r_hat is optimistic;
        ask for them with ``var_names``. Symmetric matrices (G, R) are listed once per pair of
        traits: the upper triangle with the diagonal, G[..., a, b] for a before b in the trait
        order. Warns naming parameters with r_hat > 1.01 or ess_bulk < 100.
        """
        if var_names is None:
            var_names = [v for v in ("h2", "G", "B") if v in self.draws and self.draws[v].size]
        import arviz as az
        from arviz_base import dataset_to_dataframe

        wanted = [var_names] if isinstance(var_names, str) else var_names
        plain = all(isinstance(v, str) and v in self.draws for v in wanted)
        tree = self.datatree if self._datatree is not None or not plain else self._posterior_tree(set(wanted))
        result = az.summary(tree, var_names=var_names, ci_prob=ci_prob, round_to="none", fmt="xarray")
        symmetric = [name for name in _SYMMETRIC if name in result.data_vars]
        for name in symmetric:  # the strict lower triangle becomes NaN, then its rows are dropped
            result[name] = result[name].where(_upper_triangle(result.sizes["trait"]))
        table = dataset_to_dataframe(result, sample_dims=["summary"]).T
        if symmetric:
            lower = table.isna().all(axis=1) & table.index.map(
                lambda label: str(label).split("[", 1)[0] in symmetric
            ).to_numpy(dtype=bool)
            table = table[~lower]
        if self.settings["num_chains"] * self.settings["num_samples"] >= 4:
            bad = table.index[(table["r_hat"] > 1.01) | (table["ess_bulk"] < 100)]
            if len(bad):
                warnings.warn(
                    f"{len(bad)} parameters have r_hat > 1.01 or ess_bulk < 100 "
                    f"(e.g. {', '.join(map(str, bad[:5]))}); run longer or check convergence",
                    stacklevel=2,
                )
        return table

    @property
    @float64
    def record_plan(self):
        """What the run records and how large it is (``slamjax._records.RecordPlan``; its
        ``describe()`` is what ``sample`` says at the start)."""
        s = self.settings
        return plan_records(
            self.model.data, num_chains=s["num_chains"], num_samples=s["num_samples"], chunk_size=s["chunk_size"],
            thin=s["thin"], record_covariances=s["record_covariances"],
            record_genetic_values=s["record_genetic_values"],
            record_loadings=s["record_loadings"], covariance_every=s["covariance_every"],
            extra=self._sampler.record if self._sampler is not None else (), available_memory=2**62,
        )[0]

    def _repr_html_(self) -> str:
        """Jupyter's display: settings, state and convergence of h2 at a glance (``_display``)."""
        from ._display import run_html

        return run_html(self)

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"Run({self.model!r}, chains={s['num_chains']}, warmup={s['num_warmup']}, "
            f"samples={s['num_samples']}, thin={s['thin']}, {self.elapsed:.1f} s)"
        )

    def predict_curves(self, times, interval: float = 0.9, effect: str | None = None) -> pd.DataFrame:
        """Posterior mean and equal-tailed ``interval`` of the genetic value curve B(t) (x_i' B + u_i)
        of every individual and every level of K without data, at ``times``, for a model observed
        through ``sj.obs.BSplineRegression`` (``slamjax.curves.predict_curves``): a tidy DataFrame
        (individual, time, mean, lower, upper). Needs ``sj.sample(..., record_genetic_values=True)``."""
        from .curves import predict_curves

        return predict_curves(self, times, interval=interval, effect=effect)

    def genetic_covariance_curve(self, times, effect: str | None = None) -> pd.DataFrame:
        """G(t, t') = B(t) G B(t')' (times x times) from the posterior mean of the spline
        coefficients' genetic covariance, for a ``sj.obs.BSplineRegression`` model."""
        from .curves import genetic_covariance_curve

        return genetic_covariance_curve(self, times, effect=effect)

    def h2_curve(self, times, effect: str | None = None) -> pd.Series:
        """h2(t) = [B G B']_tt / [B P B']_tt at ``times`` for a ``sj.obs.BSplineRegression`` model
        (posterior mean of the per-draw ratio when G and R are recorded per draw;
        ``slamjax.curves.h2_curve``)."""
        from .curves import h2_curve

        return h2_curve(self, times, effect=effect)
