"""Observation ("link") models mapping latent traits eta to data y."""
