"""Several observation models on disjoint blocks of latent traits, e.g. expression probes and a
fitness trait measured on the same individuals:

    p(y | Eta, theta) = prod_b p_b(y_b | Eta[:, block b], theta_b),

so step 9 runs each part on its own columns (the residuals are independent across traits given
the rest of the model) and the parts' draws are independent given (mean, resid_variance).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import SlamjaxInputError
from ._base import ObservationModel

__all__ = ["Combined"]


def _default_names(parts) -> list[str]:
    base = [type(part).__name__.lower() for part in parts]
    return [f"{name}{base[:i].count(name)}" if base.count(name) > 1 else name for i, name in enumerate(base)]


class Combined(ObservationModel):
    """Observation models that own disjoint blocks of latent traits
    (``sj.obs.Combined([sj.obs.Probes(...), sj.obs.Gaussian(fitness)], names=["expression", "fitness"])``).

    The latent traits are the parts' traits, part after part. The parts must describe the same
    individuals: labelled parts are aligned to the first part's order (unlabelled ones must be in
    it already). Records are named "<part name>.<record>" ("probes.probe_variance"); names
    default to the parts' class names in lower case.
    """

    parts: tuple
    individual_names: tuple | None = eqx.field(static=True)
    latent_names: tuple = eqx.field(static=True)
    names: tuple = eqx.field(static=True)
    bounds: tuple = eqx.field(static=True)  # the column range of each part

    def __init__(self, parts, names=None):
        parts = list(parts)
        if len(parts) < 1 or not all(isinstance(part, ObservationModel) for part in parts):
            raise SlamjaxInputError("parts: must be a list of observation models (sj.obs.Probes, Voom, Gaussian, ...)")
        names = _default_names(parts) if names is None else [str(name) for name in names]
        if len(names) != len(parts) or len(set(names)) != len(names):
            raise SlamjaxInputError(f"names: must give {len(parts)} distinct names, one per part, got {names}")
        latent = [name for part in parts for name in part.latent_names]
        if len(set(latent)) != len(latent):
            repeated = sorted({name for name in latent if latent.count(name) > 1}, key=str)[:5]
            raise SlamjaxInputError(f"parts: the latent traits {repeated} appear in more than one part; rename them")
        sizes = [len(part.latent_start()) for part in parts]
        if len(set(sizes)) != 1:
            raise SlamjaxInputError(f"parts: must describe the same individuals; they have {sizes} rows")
        labelled = [part.individual_names for part in parts if part.individual_names is not None]
        reference = labelled[0] if labelled else None
        if reference is not None:
            for i, part in enumerate(parts):
                if part.individual_names is None:
                    continue
                if set(part.individual_names) != set(reference):
                    raise SlamjaxInputError(
                        f"parts: {names[i]!r} has other individuals than {names[0]!r}; give every part the same ones"
                    )
                if tuple(part.individual_names) != tuple(reference):
                    position = {label: j for j, label in enumerate(part.individual_names)}
                    parts[i] = part.take_individuals(np.array([position[label] for label in reference]))
        self.parts = tuple(parts)
        self.individual_names = reference
        self.latent_names = tuple(latent)
        self.names = tuple(names)
        ends = np.cumsum([len(part.latent_names) for part in parts])
        self.bounds = tuple((int(e - len(part.latent_names)), int(e)) for e, part in zip(ends, parts))

    def take_individuals(self, rows):
        moved = [part.take_individuals(rows) for part in self.parts]
        return Combined(moved, names=list(self.names))

    @property
    def latent_is_data(self) -> bool:
        return all(part.latent_is_data for part in self.parts)

    def latent_start(self) -> np.ndarray:
        return np.concatenate([np.asarray(part.latent_start(), dtype=float) for part in self.parts], axis=1)

    def constructor_arguments(self) -> dict:
        return dict(parts=list(self.parts), names=list(self.names))

    def init_parameters(self):
        return tuple(part.init_parameters() for part in self.parts)

    def _columns(self, x, i):
        start, stop = self.bounds[i]
        return x[..., start:stop]

    def sample_latent(self, key, parameters, mean, resid_variance):
        """Each part's Eta block given its own data (independent draws)."""
        keys = jax.random.split(key, len(self.parts))
        return jnp.concatenate([
            part.sample_latent(keys[i], parameters[i], self._columns(mean, i), self._columns(resid_variance, i))
            for i, part in enumerate(self.parts)
        ], axis=1)

    def sample_parameters(self, key, parameters, Eta):
        keys = jax.random.split(key, len(self.parts))
        return tuple(part.sample_parameters(keys[i], parameters[i], self._columns(Eta, i))
                     for i, part in enumerate(self.parts))

    def sample_latent_and_parameters(self, key, parameters, mean, resid_variance):
        """Each part's step 9 (the default order's keys for parts that keep the default)."""
        keys = jax.random.split(key, len(self.parts))
        parameter_keys = jax.random.split(jax.random.fold_in(key, 1), len(self.parts))
        latents, thetas = [], []
        for i, part in enumerate(self.parts):
            m, v = self._columns(mean, i), self._columns(resid_variance, i)
            if type(part).sample_latent_and_parameters is ObservationModel.sample_latent_and_parameters:
                latent = part.sample_latent(keys[i], parameters[i], m, v)
                theta = part.sample_parameters(parameter_keys[i], parameters[i], latent)
            else:
                latent, theta = part.sample_latent_and_parameters(keys[i], parameters[i], m, v)
            latents.append(latent)
            thetas.append(theta)
        return jnp.concatenate(latents, axis=-1), tuple(thetas)

    def records(self, parameters):
        return {f"{name}.{record}": value for name, part, theta in zip(self.names, self.parts, parameters)
                for record, value in part.records(theta).items()}

    def record_dims(self):
        return {f"{name}.{record}": dims for name, part in zip(self.names, self.parts)
                for record, dims in part.record_dims().items()}

    def sample_prior_parameters(self, key):
        keys = jax.random.split(key, len(self.parts))
        return tuple(part.sample_prior_parameters(keys[i]) for i, part in enumerate(self.parts))

    def simulate(self, key, parameters, Eta):
        keys = jax.random.split(key, len(self.parts))
        parts = tuple(part.simulate(keys[i], parameters[i], self._columns(Eta, i)) for i, part in enumerate(self.parts))
        return eqx.tree_at(lambda m: m.parts, self, parts)
