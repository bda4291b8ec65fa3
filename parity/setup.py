"""Process-wide settings for parity runs."""

import warnings

import jax


def configure() -> None:
    """Full-fp32 matmuls on every backend (GPUs/TPUs default to TF32/bf16 passes), as torch uses."""
    jax.config.update("jax_default_matmul_precision", "highest")
    # torch warns when it initialises a zero-element weight (the in_features == 0 cases).
    warnings.filterwarnings("ignore", message="Initializing zero-element tensors is a no-op")
