"""torch's CPU thread count, set in one place.

Small models train fastest on one intra-op thread, and a run's numbers must not depend on how many
cores the machine (or ``workers``) has, so studies and notebooks set it explicitly. torch is imported
only when a function here is called: ``dsopt.chapters`` uses this module and must stay torch-free at
import time.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator


def set_torch_threads(threads: int | None) -> int:
    """Set torch's intra-op CPU threads to ``threads`` (``None``/0: leave as is); return the previous value."""
    import torch

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    return previous


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch CPU threads, restoring the previous count afterwards."""
    import torch

    previous = set_torch_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
