"""Scoped torch settings: a thread count or a seed holds inside a ``with`` block and is restored after.

torch keeps both in process-global state (``torch.set_num_threads``, the default RNG). A component that
set them at construction would change every other pipeline, trainer or user code in the process; the
components here set them around their own work only. torch is imported when a scope is entered, so
importing this module costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["RngStream", "seeded", "torch_threads"]


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` intra-op threads (None or 0: leave the process setting)."""
    if not threads:
        yield
        return
    import torch

    before = torch.get_num_threads()
    if before == threads:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block on torch's CPU RNG seeded with ``seed``; the caller's RNG state is restored after."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class RngStream:
    """A component's own torch RNG: each ``with stream.use():`` continues one seeded sequence, while
    the process's RNG is set aside for the block and restored after."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._state: Any = None  # a torch ByteTensor once the stream has been used

    @contextmanager
    def use(self) -> Iterator[None]:
        import torch

        with torch.random.fork_rng(devices=[]):
            if self._state is None:
                torch.manual_seed(self.seed)
            else:
                torch.set_rng_state(self._state)
            try:
                yield
            finally:
                self._state = torch.get_rng_state()
