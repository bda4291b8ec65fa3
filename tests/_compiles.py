"""Count XLA compilations with JAX's public monitoring API (no private ``_cache_size``)."""

import contextlib
from collections.abc import Iterator

import jax.monitoring

#: The event JAX records once per program it compiles (``jax.monitoring``).
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def count_compiles() -> Iterator[list[str]]:
    """A list that receives one entry per XLA compilation inside the ``with`` block."""
    compiled: list[str] = []

    def listener(event: str, duration: float, **kwargs) -> None:
        if event == COMPILE_EVENT:
            compiled.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield compiled
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
