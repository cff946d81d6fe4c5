"""A KV cache for CPU decoding that does not copy itself every step.

transformers' default ``DynamicCache`` grows by ``torch.cat``: each decoding step copies the whole
cache of every layer. At a few hundred tokens of context that copy is most of a step on a CPU
(measured in docs/benchmarks.md: 79% of a step at batch 16 and 1,000 tokens of context).
:class:`PreallocatedLayer` writes new keys and values into a buffer sized once for the prompt plus
the new tokens and hands attention a view of the filled part, so attention still covers only the
tokens that exist (unlike transformers' ``StaticCache``, which attends over its full length).

The greedy loop of the transformers backend keeps one such cache for a whole call and treats its
rows as slots: a prompt that joins is written into a free row, ended rows are moved out in place,
and padding every row shares is shifted out in place (:func:`place_rows`, :func:`keep_rows`,
:func:`shift_left`). Nothing is reallocated as rows come and go: an earlier version joined and
selected whole caches, and its resident memory grew with the number of prompts (9 GB for BBH's 81).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer


class PreallocatedLayer(DynamicLayer):
    """One layer's keys and values in a buffer of ``capacity`` positions (it doubles if outgrown)."""

    def __init__(self, capacity: int, batch: int = 1) -> None:
        super().__init__()
        self.capacity = max(1, capacity)
        self.batch = batch  # rows, for :meth:`place` (update() takes the batch of its first states)
        self.length = 0
        self.rows: int | None = None  # rows in use (the first ones); None: all of the buffer's

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.device = key_states.device
        batch, heads, _, _ = key_states.shape
        # Zeros, not empty memory: left padding placed by place() is masked, but a NaN there would still
        # reach the output through a zero attention weight (0 * NaN).
        self._keys = key_states.new_zeros((batch, heads, self.capacity, key_states.shape[-1]))
        self._values = value_states.new_zeros((batch, value_states.shape[1], self.capacity, value_states.shape[-1]))
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
               ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        new = key_states.shape[-2]
        if self.length + new > self.capacity:
            grow = max(self.capacity, new)  # zeros, like the first buffer: a row placed later may read them
            self._keys = torch.cat([self._keys, self._keys.new_zeros((*self._keys.shape[:2], grow,
                                                                      self._keys.shape[-1]))], dim=2)
            self._values = torch.cat([self._values, self._values.new_zeros((*self._values.shape[:2], grow,
                                                                            self._values.shape[-1]))], dim=2)
            self.capacity += grow
        rows = key_states.shape[0]  # the rows in use, when fewer than the buffer's
        self._keys[:rows, :, self.length:self.length + new] = key_states
        self._values[:rows, :, self.length:self.length + new] = value_states
        self.length += new
        self._refresh_views()
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def _refresh_views(self) -> None:
        """What attention sees: the filled part of the buffers' rows in use."""
        self.keys = self._keys[:self.rows, :, :self.length]
        self.values = self._values[:self.rows, :, :self.length]

    def place(self, row: int, source: PreallocatedLayer, width: int) -> None:
        """Copy ``source``'s (one sequence's) keys and values into ``row``, ending at column ``width``:
        a left-padded batch assembled from prompts prefilled one at a time. Allocates on first use."""
        keys, values = source.keys, source.values
        if not self.is_initialized:
            self.lazy_initialization(keys.new_empty((self.batch, *keys.shape[1:])),
                                     values.new_empty((self.batch, *values.shape[1:])))
        self.length = width
        n = keys.shape[-2]
        self._keys[row, :, width - n:width] = keys[0]
        self._values[row, :, width - n:width] = values[0]
        self._refresh_views()

    def seed(self, source: PreallocatedLayer, length: int) -> None:
        """Start this (one-sequence) layer with the first ``length`` positions of ``source``: a shared prefix."""
        keys, values = source.keys[:, :, :length], source.values[:, :, :length]
        self.lazy_initialization(keys, values)
        self.update(keys, values)

    def use_rows(self, rows: int) -> None:
        """Attend with the first ``rows`` rows of the buffer (the rest are free slots)."""
        self.rows = rows
        if self.is_initialized:
            self._refresh_views()

    def keep_rows_in_place(self, keep: Sequence[int]) -> None:
        """Move rows ``keep`` (ascending) to the front, without allocating, and use only those."""
        if self.is_initialized:
            for j, i in enumerate(keep):  # j <= i: a row is read before anything is written over it
                if i != j:
                    self._keys[j, :, :self.length] = self._keys[i, :, :self.length]
                    self._values[j, :, :self.length] = self._values[i, :, :self.length]
        self.use_rows(len(keep))

    def shift_left(self, columns: int) -> None:
        """Drop the first ``columns`` positions of the rows in use, in place (padding they all share)."""
        if self.is_initialized and columns:
            kept = self.length - columns
            for buffer in (self._keys, self._values):
                rows = buffer[:self.rows]
                rows[:, :, :kept] = rows[:, :, columns:self.length].clone()  # overlapping ranges: copy first
            self.length = kept
            self._refresh_views()

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove > 0:
            raise ValueError("crop takes a negative number of tokens to remove")
        if tokens_to_remove and self.is_initialized:
            self.length = max(0, self.length + tokens_to_remove)
            self._refresh_views()

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep only the rows ``indices`` (finished rows leave the batch); copies the filled part only."""
        if self.is_initialized:
            for name in ("_keys", "_values"):
                old = getattr(self, name)
                kept = old.new_zeros((len(indices), *old.shape[1:]))
                kept[:, :, :self.length] = old[indices, :, :self.length]
                setattr(self, name, kept)
            self._refresh_views()

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.is_initialized:
            self._keys = self._keys.repeat_interleave(repeats, dim=0)
            self._values = self._values.repeat_interleave(repeats, dim=0)
            self._refresh_views()

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self.batch_select_indices(beam_idx)


def supports_preallocation(model: Any) -> bool:
    """Whether every layer is plain full attention (sliding-window and linear-attention layers keep their own)."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    kinds = set(getattr(config, "layer_types", None) or ["full_attention"])
    return kinds == {"full_attention"} and not (getattr(config, "sliding_window", None)
                                                and getattr(config, "use_sliding_window", True))


def kv_cache_for(model: Any, capacity: int, batch: int = 1) -> DynamicCache:
    """A ``DynamicCache`` whose layers are :class:`PreallocatedLayer` of ``capacity`` positions; transformers'
    own where :func:`supports_preallocation` says no."""
    cache = DynamicCache(config=model.config)
    if supports_preallocation(model):
        cache.layers = [PreallocatedLayer(capacity, batch) for _ in range(len(cache.layers))]
    return cache


def place_rows(cache: DynamicCache, rows: Sequence[int], sources: Sequence[DynamicCache], width: int,
               in_use: int) -> None:
    """Write each one-sequence cache of ``sources`` into its row of ``cache``, ending at column ``width``,
    and attend with the first ``in_use`` rows."""
    for r, source in zip(rows, sources, strict=True):
        for layer, own in zip(cache.layers, source.layers, strict=True):
            layer.place(r, own, width)
    for layer in cache.layers:
        layer.use_rows(in_use)


def keep_rows(cache: DynamicCache, keep: Sequence[int]) -> None:
    """Keep only rows ``keep`` (ascending), moved to the front in place
    (:meth:`PreallocatedLayer.keep_rows_in_place`)."""
    for layer in cache.layers:
        layer.keep_rows_in_place(keep)


def shift_left(cache: DynamicCache, columns: int) -> None:
    """Drop the first ``columns`` positions of every layer, in place (see :meth:`PreallocatedLayer.shift_left`)."""
    for layer in cache.layers:
        layer.shift_left(columns)
