"""Test configuration: all tests run in float64."""

import jax

jax.config.update("jax_enable_x64", True)


def pytest_configure(config):
    import jax.numpy as jnp
    import pytest

    if not jax.config.jax_enable_x64 or jnp.zeros(1).dtype != jnp.float64:
        raise pytest.UsageError(
            "tests/conftest.py: JAX float64 mode (jax_enable_x64) is off; the tests need it"
        )
