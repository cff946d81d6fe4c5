"""Which scaled-dot-product-attention kernels seapo's own forwards let torch pick on a GPU."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def without_cudnn_attention() -> Iterator[None]:
    """Keep torch's cuDNN attention kernel out of ``scaled_dot_product_attention`` inside the block.

    seapo's greedy loop and its shared-prefix training forward pass an explicit attention mask whose shape
    changes from call to call (a KV cache that grows by a column each step, batches grouped by length). With
    a mask, torch 2.11 on an H200 picks cuDNN's kernel, which builds a new cuDNN graph for every new shape:
    measured there (bench/gpu_profile.py, docs/gpu.md) 1.3 ms of host time per attention call against 8 us on
    the GPU, so a decoding step of a 28-layer model waited ~36 ms on graph building. The memory-efficient and
    flash kernels take such masks without that cost. On a CPU the flag changes nothing; it is set there too,
    so the same code path runs (and is tested) everywhere. The previous setting comes back on exit.
    """
    import torch

    backends = getattr(torch.backends, "cuda", None)
    if backends is None or not hasattr(backends, "enable_cudnn_sdp"):  # a torch without cuDNN attention
        yield
        return
    before = backends.cudnn_sdp_enabled()
    backends.enable_cudnn_sdp(False)
    try:
        yield
    finally:
        backends.enable_cudnn_sdp(before)
