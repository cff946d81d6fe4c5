"""Shared-prefix forward: rows of a batch that share a prefix run it once.

A SeaPO pair is a minimal contrast: chosen and rejected share the prompt and the response up to
the first injected edit. TRL's trainers run the two as separate padded rows, so that common text
is computed twice. Here two rows that share a prefix become **one** packed row::

    shared (prompt + common response prefix) | first continuation | second continuation

with a block attention mask (a continuation sees the shared part and itself, causally, never the
other continuation) and position ids that restart for the second continuation where the first
one started. Every token then sees exactly the context it has in its own sequence, so the
hidden states -- and the log-probabilities, entropies and gradients TRL derives from them --
equal the unshared forward's up to floating-point summation order (prior art: Wang et al. 2024,
"Accelerating Direct Preference Optimization with Prefix Sharing", which shares the prompt only).

Which rows are packed is read off each batch (:func:`pair_rows`: greedily the two rows with the
longest common prefix), so one mechanism serves every layout:

* DPOTrainer (dpo/ipo/apo_*): ``[chosen rows; rejected rows]``, row ``i`` with row ``B + i``;
  also its reference precomputation.
* KTOTrainer (kto): with micro-batches of >= 4 rows, :func:`seapo.train.data.ordered_kto_rows`
  puts a pair's two rows in one micro-batch, ``[c0, c1, ..; r0, r1, ..]``; TRL's KL rows (each
  prompt with the previous row's completion) then come in pairs too -- prompt ``i`` with the chosen
  and with the rejected response of pair ``i - 1``, which share that pair's response prefix. The
  KL forward, the main forward and the reference precomputation are each packed.
* CPOTrainer (simpo) and ORPOTrainer (orpo): ``[chosen; rejected]`` through the whole model.

How it plugs in (no fork): every one of those forwards calls the model's backbone
(``LlamaModel`` & co.). A forward pre-hook on the backbone swaps the batch's rows for the packed
ones, and a forward hook scatters the packed hidden states back into the layout the trainer
expects; the trainers of :func:`shared_prefix_trainer` enable the hooks around their own forwards
only. With TRL's fused LM head (DPO, KTO) the head also scores only the positions that have a
label on CPU (:func:`compact_lm_head`). Exact only where the attention honours a custom 4D mask
and explicit position ids (``sdpa``, ``eager``): :func:`shared_prefix_supported` says whether,
and why not.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

EXACT_ATTENTION = ("sdpa", "eager")


def shared_prefix_supported(model: Any) -> tuple[bool, str]:
    """Whether the packed forward is exact for ``model``, and the reason (for settings.json)."""
    config = getattr(model, "config", None)
    impl = getattr(config, "_attn_implementation", None) or "sdpa"
    if impl not in EXACT_ATTENTION:
        return False, f"attention '{impl}' ignores a custom 4D mask: unshared forward"
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
        return False, "sliding-window attention: the packed positions would change the window: unshared forward"
    return True, f"shared-prefix forward ({impl} attention): each pair's common tokens run once"


@dataclass
class PackPlan:
    """How the ``R`` rows of one batch map onto fewer packed rows."""

    input_ids: torch.Tensor
    """``P x T`` packed token ids."""
    attention_mask: torch.Tensor
    """``P x 1 x T x T`` block mask (bool for sdpa: True = attend; additive float for eager)."""
    position_ids: torch.Tensor
    """``P x T``: 0.. over shared + first continuation, restarting at the shared length for the second."""
    gather: torch.Tensor
    """``R x L``: the packed position each original row's position reads (padding reads 0)."""
    rows_shape: tuple[int, int]
    shared_tokens: int
    """Tokens computed once instead of twice in this batch."""
    tokens_unshared: int
    """Non-padding tokens of the ``R`` rows (what the unshared forward computes)."""
    groups: list[tuple[int, int | None, int]]
    """Per packed row: ``(first row, second row or None, shared tokens)``."""


MIN_SHARED_FRACTION = 0.25
"""Two rows are packed only when they share at least this fraction of the longer one: below it, the
longer packed row's attention (quadratic in its length) costs more than the shared tokens save."""


def right_padded_lengths(attention_mask: torch.Tensor) -> list[int] | None:
    """Each row's length when ``attention_mask`` is 2D and right-padded (ones, then zeros), else None."""
    if attention_mask is None or attention_mask.dim() != 2:
        return None
    lengths = attention_mask.sum(dim=1)
    if bool((attention_mask.long().cumprod(dim=1).sum(dim=1) != lengths).any()):
        return None
    return lengths.tolist()


def pair_rows(input_ids: torch.Tensor, lengths: list[int], min_fraction: float = MIN_SHARED_FRACTION
              ) -> list[tuple[int, int | None, int]]:
    """Group the rows into pairs that share a prefix: greedily, the two rows with the longest common
    prefix first (a DPO batch's ``[chosen; rejected]`` halves, KTO's two rows of a pair, KTO's KL rows
    of one prompt, duplicate rows), each row at most once; a pair only when it shares at least
    ``min_fraction`` of the longer row. Returns ``(row, partner or None, shared)`` in row order."""
    import torch

    rows, width = input_ids.shape
    length = torch.tensor(lengths, device=input_ids.device)
    same = input_ids[:, None, :] == input_ids[None, :, :]
    same &= torch.arange(width, device=input_ids.device) < torch.minimum(length[:, None], length[None, :])[..., None]
    common = same.long().cumprod(dim=-1).sum(dim=-1).tolist()
    half = rows // 2
    candidates = sorted(((common[i][j], abs(j - i) == half and rows % 2 == 0, -i, -j) for i in range(rows)
                         for j in range(i + 1, rows)), reverse=True)
    partner: dict[int, tuple[int, int]] = {}
    for shared, _halves, ni, nj in candidates:
        i, j = -ni, -nj
        if shared == 0:
            break  # sorted by shared length: no later candidate shares anything
        if i in partner or j in partner or shared < min_fraction * max(lengths[i], lengths[j]):
            continue
        partner[i], partner[j] = (j, shared), (i, shared)
    groups: list[tuple[int, int | None, int]] = []
    for i in range(rows):
        if i not in partner:
            groups.append((i, None, 0))
        elif partner[i][0] > i:
            groups.append((i, partner[i][0], partner[i][1]))
    return groups


def plan_batch(input_ids: torch.Tensor, attention_mask: torch.Tensor, attn_impl: str = "sdpa",
               min_fraction: float = MIN_SHARED_FRACTION) -> PackPlan:
    """The packing of one right-padded batch: rows sharing a prefix (:func:`pair_rows`) become one
    row ``shared | first continuation | second continuation``; the other rows stay alone."""
    import torch

    rows, width = input_ids.shape
    lengths = right_padded_lengths(attention_mask)
    if lengths is None:
        raise ValueError("plan_batch needs a 2D right-padded attention mask")
    groups = pair_rows(input_ids, lengths, min_fraction)
    total = [lengths[i] + (lengths[j] - s if j is not None else 0) for i, j, s in groups]
    packed_rows, packed_width = len(groups), max(total)
    device = input_ids.device
    packed = torch.zeros((packed_rows, packed_width), dtype=input_ids.dtype, device=device)
    positions = torch.zeros((packed_rows, packed_width), dtype=torch.long, device=device)
    segment = torch.full((packed_rows, packed_width), -1, dtype=torch.long, device=device)  # -1 pad, 0 shared, 1, 2
    gather = torch.zeros((rows, width), dtype=torch.long, device=device)
    for g, (i, j, s) in enumerate(groups):
        li, base = lengths[i], g * packed_width
        packed[g, :li] = input_ids[i, :li]
        positions[g, :li] = torch.arange(li, device=device)
        segment[g, :s], segment[g, s:li] = 0, 1
        gather[i, :li] = base + torch.arange(li, device=device)
        if j is None:
            continue
        lj = lengths[j]
        packed[g, li:li + lj - s] = input_ids[j, s:lj]
        positions[g, li:li + lj - s] = torch.arange(s, lj, device=device)
        segment[g, li:li + lj - s] = 2
        gather[j, :s] = base + torch.arange(s, device=device)
        gather[j, s:lj] = base + li + torch.arange(lj - s, device=device)
    index = torch.arange(packed_width, device=device)
    causal = index[None, :, None] >= index[None, None, :]  # query q sees key k <= q (packed order)
    seg_q, seg_k = segment[:, :, None], segment[:, None, :]
    allowed = causal & (seg_k >= 0) & ((seg_k == 0) | (seg_k == seg_q))
    allowed |= torch.eye(packed_width, dtype=torch.bool, device=device)[None]  # padding queries: no empty row
    mask = allowed[:, None]
    if attn_impl == "eager":
        mask = torch.zeros(mask.shape, dtype=torch.float32, device=device).masked_fill(
            ~mask, torch.finfo(torch.float32).min)
    return PackPlan(packed, mask, positions, gather, (rows, width), shared_tokens=sum(s for _, _, s in groups),
                    tokens_unshared=int(sum(lengths)), groups=groups)


class BackbonePacker:
    """The pre-hook and hook on a model's backbone that run a :class:`PackPlan` instead of the
    batch's rows, and give back hidden states in the rows' layout.

    Two ways to arm it: ``plan`` (a plan made for one batch, used for the call whose ``input_ids``
    have its shape) or ``enabled`` (every call plans its own batch -- a trainer's several forwards per
    step, e.g. KTO's KL and main forwards and the reference ones -- and a batch with no shared
    prefix, or not right-padded, or with its own ``position_ids``, runs unchanged)."""

    def __init__(self, backbone: Any, attn_impl: str = "sdpa") -> None:
        self.plan: PackPlan | None = None
        self.enabled = False
        self.attn_impl = attn_impl
        self.shared_tokens = 0
        self.tokens_unshared = 0
        self._running: PackPlan | None = None
        self._handles = [backbone.register_forward_pre_hook(self._pre, with_kwargs=True),
                         backbone.register_forward_hook(self._post, with_kwargs=True)]

    def _plan_for(self, ids: Any, kwargs: dict[str, Any]) -> PackPlan | None:
        if self.plan is not None:
            return self.plan if tuple(ids.shape) == self.plan.rows_shape else None
        if not self.enabled or kwargs.get("position_ids") is not None or kwargs.get("past_key_values") is not None \
                or kwargs.get("inputs_embeds") is not None or ids.dim() != 2 or ids.size(0) < 2:
            return None
        if right_padded_lengths(kwargs.get("attention_mask")) is None:
            return None
        plan = plan_batch(ids, kwargs["attention_mask"], self.attn_impl)
        return plan if plan.shared_tokens else None

    def _pre(self, module: Any, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]] | None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        self._running = None
        if ids is None:
            return None
        plan = self._plan_for(ids, kwargs)
        if plan is None:
            if self.enabled:  # a forward with nothing to share still counts in the saved fraction
                mask = kwargs.get("attention_mask")
                self.tokens_unshared += int(mask.sum()) if mask is not None and mask.dim() == 2 else ids.numel()
            return None
        self._running = plan
        kwargs = {**kwargs, "input_ids": plan.input_ids, "attention_mask": plan.attention_mask,
                  "position_ids": plan.position_ids}
        return (), kwargs

    def _post(self, module: Any, args: tuple, kwargs: dict[str, Any], output: Any) -> Any:
        plan, self._running = self._running, None
        if plan is None or kwargs.get("input_ids") is not plan.input_ids:
            return None
        hidden = output.last_hidden_state
        flat = hidden.reshape(-1, hidden.size(-1))
        output.last_hidden_state = flat[plan.gather.reshape(-1)].view(*plan.rows_shape, hidden.size(-1))
        self.shared_tokens += plan.shared_tokens
        self.tokens_unshared += plan.tokens_unshared
        return output

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


def backbone_of(model: Any) -> Any:
    """The module TRL's fused LM head calls for hidden states (through PEFT wrappers)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return inner.get_decoder() if hasattr(inner, "get_decoder") else inner.model


@contextmanager
def compact_lm_head() -> Iterator[None]:
    """TRL's fused LM head scores only the positions with a label (prompt and padding skipped) on
    every device, not only on Triton ones: off Triton it scores every position so that a compiled
    (e.g. Neuron) graph keeps one tile shape; in eager PyTorch on CPU nothing recompiles. The same
    per-token values and gradients (they are zeroed where the label is -100 either way)."""
    import trl.trainer.utils as trl_utils

    original = trl_utils._use_triton
    trl_utils._use_triton = lambda device: True  # only the fused head's 'compact' choice reads this binding
    try:
        yield
    finally:
        trl_utils._use_triton = original


class _SharedPrefixMixin:
    """What the shared-prefix trainers add to a TRL trainer: packers on the policy's (and a separate
    reference model's) backbone, enabled around every forward the trainer makes per batch."""

    packs_shared_prefix = True
    trl_base: type
    """The TRL trainer this one extends (used instead where the packing is not exact)."""
    pack = True
    """False: the trainer's own unshared forward (the tests compare both on one trainer)."""

    def _packers(self) -> list[BackbonePacker]:
        packers = self.__dict__.get("_packer_list")
        if packers is None:  # built on first use: the reference precomputation runs inside TRL's __init__
            packers = []
            for m in (self.model, getattr(self, "ref_model", None)):
                if m is None:
                    continue
                inner = self.accelerator.unwrap_model(m)
                base = inner.get_base_model() if hasattr(inner, "get_base_model") else inner
                impl = getattr(base.config, "_attn_implementation", None) or "sdpa"
                packers.append(BackbonePacker(backbone_of(inner), impl))
            self.__dict__["_packer_list"] = packers
        return packers

    @property
    def packer(self) -> BackbonePacker:
        return self._packers()[0]

    @contextmanager
    def _packing(self) -> Iterator[None]:
        if not self.pack:
            yield
            return
        packers = self._packers()
        for p in packers:
            p.enabled = True
        try:
            with compact_lm_head():
                yield
        finally:
            for p in packers:
                p.enabled = False

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        packers = self._packers()
        total = sum(p.tokens_unshared for p in packers)
        if total:
            logs["shared_prefix/saved_fraction"] = sum(p.shared_tokens for p in packers) / total
        super().log(logs, *args, **kwargs)


class _FusedHeadMixin(_SharedPrefixMixin):
    """DPOTrainer and KTOTrainer: the step's forwards are in ``_compute_loss``, the reference
    precomputation's in ``compute_ref_log_probs``."""

    def _compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
        with self._packing():
            return super()._compute_loss(model, inputs, return_outputs)

    def compute_ref_log_probs(self, model: Any, inputs: dict[str, Any]) -> Any:
        with self._packing():
            return super().compute_ref_log_probs(model, inputs)


class _ConcatenatedMixin(_SharedPrefixMixin):
    """CPOTrainer (SimPO) and ORPOTrainer: one forward per batch, in ``concatenated_forward``, on
    ``[chosen; rejected]`` rows through the whole model (full logits, TRL's own log-prob code)."""

    def concatenated_forward(self, model: Any, batch: dict[str, Any]) -> Any:
        with self._packing():
            return super().concatenated_forward(model, batch)


def shared_prefix_trainer(algo: str = "dpo") -> type:
    """The TRL trainer of ``algo`` with the shared-prefix forward, built on first use (TRL imports
    torch and more): DPOTrainer (dpo/ipo/apo_*), KTOTrainer (kto), CPOTrainer (simpo), ORPOTrainer
    (orpo)."""
    return _shared_prefix_trainer(algo if algo in ("kto", "simpo", "orpo") else "dpo")


@cache
def _shared_prefix_trainer(algo: str) -> type:
    if algo == "kto":
        from trl import KTOTrainer as base

        mixin: type = _FusedHeadMixin
    elif algo == "simpo":
        from trl.experimental.cpo import CPOTrainer as base

        mixin = _ConcatenatedMixin
    elif algo == "orpo":
        from trl.experimental.orpo import ORPOTrainer as base

        mixin = _ConcatenatedMixin
    else:
        from trl import DPOTrainer as base

        mixin = _FusedHeadMixin
    name = f"SharedPrefix{base.__name__}"
    return type(name, (mixin, base), {"__doc__": f"TRL's {base.__name__} with the shared-prefix forward "
                                                 "(module docstring); everything else is TRL's.",
                                      "__module__": __name__, "trl_base": base})
