"""Run a block of torch work with a given number of intra-op threads, then restore the caller's setting.

Used by the reference model build (:mod:`llmops.models.pretrain`) and CPU fine-tunes
(:mod:`llmops.finetune.threads`); torch is imported only when the block runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads (None: unchanged), restoring the caller's setting."""
    import torch

    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
