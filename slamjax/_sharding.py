"""Traits (and chains) split over several devices, and over several processes.

A run given ``devices`` lays its devices out as a mesh of (chain groups, trait groups). Every
array with a trait axis (the last axis everywhere: Eta, B, Lambda, tau, h2, U_R, the shrinkage
priors' per-trait parameters, the data's Y and its observation model's per-trait arrays, the
running means) is split over the trait groups on that axis; arrays with a chain axis (the first
axis of states, keys, running sums and draws) are split over the chain groups; everything else
(the random effects' fixed decompositions, X, the factors F, U_F and their priors) is replicated.

The sweep itself is unchanged: the compiled loop only states these layouts (``constrain``, on
entry) and XLA's SPMD partitioner splits every operation to match (GSPMD). Per-trait work (the
regressions, their Choleskys, tau, h2, U_R, the shrinkage priors' per-trait draws, the
observation model) then runs on each device's own traits, and the reductions over traits become
all-reduces: measured in the compiled sweep at n = 200, p = 40, 10 factors on 4 devices, one
sum of n x k (the factor scores' right-hand side) and one of k x k (their precision) per chain,
plus a few vectors of k; no trait-sized array moves between devices inside a sweep. Only the
covariance records (G and R, p x p) gather Lambda, once per counted draw.

Why not ``shard_map`` with hand-written psums: inside it every per-trait random draw would be
made for the device's local shape, so the draws would change with the layout, and the blocks,
which know nothing of devices, would have to name the mesh axis in their sums. With GSPMD they
stay as they are, and XLA's batched solves split cleanly here (no gather, measured above).

Draws equal the unsharded sampler's up to the order of floating-point sums (1e-13 in 20 sweeps;
the random bits themselves do not depend on the layout: JAX's Threefry is partitionable). Over a
long run two such chains drift apart like any two runs whose arithmetic differs in the last bit,
so a sharded run continues an unsharded store statistically, not bit for bit.

Trait counts that do not divide evenly are split unevenly inside the loop (XLA pads the last
shard); across the loop's boundary such arrays are kept whole on every device (JAX requires
divisible shapes there), so a chunk starts and ends with one gather of them. With several
processes (``jax.distributed``) every process runs the same program on the same inputs
(``place`` builds each global array from the process's own copy); ``to_host`` gathers results
onto every process and only process 0 writes the store (run.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ._errors import SlamjaxInputError

__all__ = ["TraitSharding", "trait_sharding", "to_host", "is_writer", "collectives"]

CHAINS, TRAITS = "chains", "traits"

# fields of State and of SamplerData whose arrays have the trait axis last
_STATE_TRAIT_FIELDS = ("Eta", "B", "Lambda", "tot_Eta_prec", "resid_h2_index", "U_R", "Lambda_prior", "B_prior", "obs")
_DATA_TRAIT_FIELDS = ("Y_start", "Y_mean", "Y_scale", "observation", "Lambda_prior", "B_prior", "groups")


class TraitSharding:
    """A mesh of (chain groups, trait groups) and the layout of every array of a run on it.

    Hashable by identity of its mesh and p: the compiled loop takes it as a static argument."""

    def __init__(self, mesh: Mesh, p: int):
        self.mesh, self.p = mesh, p

    def __hash__(self):
        return hash((self.mesh, self.p))

    def __eq__(self, other):
        return isinstance(other, TraitSharding) and (self.mesh, self.p) == (other.mesh, other.p)

    def __repr__(self):
        return f"TraitSharding({dict(self.mesh.shape)}, p={self.p})"

    @property
    def n_devices(self) -> int:
        return self.mesh.devices.size

    def describe(self) -> str:
        shape = dict(self.mesh.shape)
        where = f"{jax.process_count()} processes" if jax.process_count() > 1 else "1 process"
        return (f"{self.p} traits split over {shape[TRAITS]} devices"
                + (f", chains over {shape[CHAINS]} groups" if shape[CHAINS] > 1 else "") + f" ({where})")

    def _spec(self, x, chain_axis: bool, traits: bool, divisible_only: bool) -> PartitionSpec:
        shape = np.shape(x)
        spec = [None] * len(shape)
        if chain_axis and len(shape) >= 1 and self.mesh.shape[CHAINS] > 1:
            spec[0] = CHAINS
        if traits and len(shape) >= 1 + chain_axis and shape[-1] == self.p:
            spec[-1] = TRAITS
        if divisible_only:
            spec = [axis if axis is None or shape[i] % self.mesh.shape[axis] == 0 else None
                    for i, axis in enumerate(spec)]
        return PartitionSpec(*spec)

    def _layout(self, tree, chain_axis: bool, trait_fields, divisible_only: bool):
        """(tree, shardings): a NamedSharding for every array leaf of ``tree``; ``trait_fields``:
        the fields whose arrays have the trait axis last (None: every leaf whose last axis is p)."""

        def of(subtree, traits):
            return jax.tree.map(lambda x: NamedSharding(self.mesh, self._spec(x, chain_axis, traits, divisible_only)),
                                subtree)

        if trait_fields is None:
            return of(tree, True)
        import equinox as eqx

        fields = {name: getattr(tree, name) for name in tree.__dataclass_fields__
                  if not tree.__dataclass_fields__[name].metadata.get("static", False)}
        shardings = tree
        for name, value in fields.items():
            shardings = eqx.tree_at(lambda t: getattr(t, name), shardings, of(value, name in trait_fields),
                                    is_leaf=lambda x: x is None)
        return shardings

    def constrain(self, data, states, chain_keys, accumulators):
        """The loop's inputs with their layouts stated (inside jit; uneven splits allowed)."""
        c = jax.lax.with_sharding_constraint
        data = _filtered(c, data, self._layout(data, False, _DATA_TRAIT_FIELDS, False))
        states = _filtered(c, states, self._layout(states, True, _STATE_TRAIT_FIELDS, False))
        accumulators = _filtered(c, accumulators, self._layout(accumulators, True, None, False))
        keys = c(chain_keys, NamedSharding(self.mesh, PartitionSpec(CHAINS if self.mesh.shape[CHAINS] > 1 else None)))
        return data, states, keys, accumulators

    def place(self, data, states, chain_keys, accumulators):
        """The loop's inputs as global arrays on the mesh (outside jit: divisible splits only,
        the rest whole on every device), built from this process's own copy."""
        data = _filtered(_put, data, self._layout(data, False, _DATA_TRAIT_FIELDS, True))
        states = _filtered(_put, states, self._layout(states, True, _STATE_TRAIT_FIELDS, True))
        accumulators = _filtered(_put, accumulators, self._layout(accumulators, True, None, True))
        key_data = jax.device_get(jax.random.key_data(chain_keys))
        spec = PartitionSpec(CHAINS if self.mesh.shape[CHAINS] > 1 and len(key_data) % self.mesh.shape[CHAINS] == 0
                             else None)
        keys = jax.random.wrap_key_data(_put(key_data, NamedSharding(self.mesh, spec)),
                                        impl=jax.random.key_impl(chain_keys))
        return data, states, keys, accumulators


def _filtered(function, tree, shardings):
    """``function(leaf, sharding)`` on the array leaves of ``tree`` (static fields left alone)."""
    import equinox as eqx

    arrays, static = eqx.partition(tree, eqx.is_array)
    layouts, _ = eqx.partition(shardings, lambda x: isinstance(x, NamedSharding))
    placed = jax.tree.map(lambda x, layout: x if x is None else function(x, layout), arrays, layouts,
                          is_leaf=lambda x: x is None)
    return eqx.combine(placed, static)


def _put(x, sharding: NamedSharding):
    """One global array from this process's copy of its value (the same on every process)."""
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    host = np.asarray(jax.device_get(x))
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def trait_sharding(devices, chain_groups: int, p: int, num_chains: int) -> TraitSharding | None:
    """The mesh of a run given ``devices`` (None: one device, no mesh; an int: the first that many
    of ``jax.devices()``, across every process; or a sequence of devices), ``chain_groups`` of
    them along the chains. Refuses what cannot be laid out, naming the fix."""
    if devices is None:
        if chain_groups != 1:
            raise SlamjaxInputError("chain_groups: needs devices=...; without devices a run uses one device")
        return None
    available = jax.devices()
    if isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        if not 1 <= devices <= len(available):
            raise SlamjaxInputError(
                f"devices: asked for {devices}, but JAX sees {len(available)} ({available[0].platform}); pass a "
                f"count from 1 to {len(available)} (forced CPU devices: XLA_FLAGS="
                "--xla_force_host_platform_device_count=N before JAX starts)"
            )
        chosen = available[:int(devices)]
    elif isinstance(devices, Sequence) and devices and all(isinstance(d, jax.Device) for d in devices):
        chosen = list(devices)
        if len({d.id for d in chosen}) != len(chosen):
            raise SlamjaxInputError("devices: the same device is listed twice")
    else:
        raise SlamjaxInputError(f"devices: must be a device count or a list of jax devices, got {devices!r}")
    if isinstance(chain_groups, bool) or not isinstance(chain_groups, (int, np.integer)) or chain_groups < 1 \
            or len(chosen) % chain_groups:
        raise SlamjaxInputError(
            f"chain_groups: must be a whole number >= 1 that divides the {len(chosen)} devices, got {chain_groups!r}"
        )
    if chain_groups > num_chains:
        raise SlamjaxInputError(f"chain_groups: {chain_groups} groups for {num_chains} chains; use at most "
                                f"num_chains groups")
    trait_groups = len(chosen) // chain_groups
    if trait_groups > p:
        raise SlamjaxInputError(f"devices: {trait_groups} trait groups for {p} traits; use at most {p} devices "
                                "per chain group")
    mesh = Mesh(np.array(chosen, dtype=object).reshape(chain_groups, trait_groups), (CHAINS, TRAITS))
    return TraitSharding(mesh, p)


def to_host(tree):
    """NumPy copies of ``tree``'s arrays on this process; arrays spread over several processes
    are gathered (every process must call this at the same point)."""
    leaves = jax.tree.leaves(tree)
    if all(getattr(x, "is_fully_addressable", True) for x in leaves):
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    def one(x):
        if getattr(x, "is_fully_addressable", True):
            return jax.device_get(x)
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))

    return jax.tree.map(one, tree)


def collectives(compiled_text: str) -> dict[str, list[list[int]]]:
    """The all-gathers and all-reduces of a compiled program (``compiled.as_text()``), each as the
    shapes it moves: what a sweep exchanges between devices (tests and benchmarks/sharding.py)."""
    import re

    found = {"all-gather": [], "all-reduce": []}
    for line in compiled_text.splitlines():
        match = re.match(r"\s*\S+ = \(?(.*?)\)? (all-gather|all-reduce)(-start)?\(", line)
        if match:
            shapes = re.findall(r"[a-z]+\d*\[([\d,]*)\]", match.group(1))
            found[match.group(2)] += [[int(d) for d in shape.split(",") if d] for shape in shapes]
    return found


def is_writer() -> bool:
    """True on the process that writes the store and prints: process 0."""
    return jax.process_index() == 0
