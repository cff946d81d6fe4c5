"""Shared-prefix forward for the DPO family: a pair's common tokens run once.

A SeaPO pair is a minimal contrast: chosen and rejected share the prompt and the response up to
the first injected edit. TRL's DPOTrainer runs ``[chosen; rejected]`` as ``2B`` padded rows, so
that common text is computed twice. Here each pair becomes **one** packed row::

    shared (prompt + common response prefix) | chosen continuation | rejected continuation

with a block attention mask (a continuation sees the shared part and itself, causally, never the
other continuation) and position ids that restart for the rejected continuation where the chosen
one started. Every token then sees exactly the context it has in its own sequence, so the
hidden states -- and the log-probabilities, entropies and gradients TRL derives from them --
equal the unshared forward's up to floating-point summation order (prior art: Wang et al. 2024,
"Accelerating Direct Preference Optimization with Prefix Sharing", which shares the prompt only).

How it plugs in (no fork): TRL's fused LM head calls the model's backbone
(``LlamaModel`` & co.) and scores its ``last_hidden_state``. A forward pre-hook on the backbone
swaps the ``2B`` rows for the packed ones, and a forward hook scatters the packed hidden states
back into the ``2B x L`` layout TRL expects; :class:`SharedPrefixDPOTrainer` arms the hooks for
the one batch its ``_compute_loss`` is given. Exact only where the attention honours a custom 4D
mask and explicit position ids (``sdpa``, ``eager``): :func:`shared_prefix_supported` says
whether, and why not.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from seapo.train.data import common_prefix

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
    """How the ``2B`` rows of one DPO batch map onto ``B`` packed rows."""

    input_ids: torch.Tensor
    """``B x T`` packed token ids."""
    attention_mask: torch.Tensor
    """``B x 1 x T x T`` block mask (bool for sdpa: True = attend; additive float for eager)."""
    position_ids: torch.Tensor
    """``B x T``: 0.. over shared + chosen, restarting at the shared length for rejected."""
    gather: torch.Tensor
    """``2B x L``: the packed position each original row's position reads (padding reads 0)."""
    rows_shape: tuple[int, int]
    shared_tokens: int
    """Tokens computed once instead of twice in this batch."""
    tokens_unshared: int
    """Non-padding tokens of the ``2B`` rows (what the unshared forward computes)."""


def plan_batch(input_ids: torch.Tensor, attention_mask: torch.Tensor, attn_impl: str = "sdpa") -> PackPlan:
    """The packing of one TRL DPO batch (``input_ids``: ``[chosen rows; rejected rows]``, right-padded)."""
    import torch

    rows, width = input_ids.shape
    pairs = rows // 2
    lengths = attention_mask.sum(dim=1).tolist()
    ids_list = input_ids.tolist()
    shared, total = [], []
    for i in range(pairs):
        lc, lr = lengths[i], lengths[pairs + i]
        s = common_prefix(ids_list[i][:lc], ids_list[pairs + i][:lr])
        shared.append(s)
        total.append(lc + lr - s)
    packed_width = max(total)
    device = input_ids.device
    packed = torch.zeros((pairs, packed_width), dtype=input_ids.dtype, device=device)
    positions = torch.zeros((pairs, packed_width), dtype=torch.long, device=device)
    segment = torch.full((pairs, packed_width), -1, dtype=torch.long, device=device)  # -1 pad, 0 shared, 1 c, 2 r
    gather = torch.zeros((rows, width), dtype=torch.long, device=device)
    for i in range(pairs):
        lc, lr, s = lengths[i], lengths[pairs + i], shared[i]
        c, r = input_ids[i, :lc], input_ids[pairs + i, :lr]
        packed[i, :lc] = c
        packed[i, lc:lc + lr - s] = r[s:]
        positions[i, :lc] = torch.arange(lc, device=device)
        positions[i, lc:lc + lr - s] = torch.arange(s, lr, device=device)
        segment[i, :s], segment[i, s:lc], segment[i, lc:lc + lr - s] = 0, 1, 2
        gather[i, :lc] = i * packed_width + torch.arange(lc, device=device)
        gather[pairs + i, :s] = i * packed_width + torch.arange(s, device=device)
        gather[pairs + i, s:lr] = i * packed_width + lc + torch.arange(lr - s, device=device)
    index = torch.arange(packed_width, device=device)
    causal = index[None, :, None] >= index[None, None, :]  # query q sees key k <= q (packed order)
    seg_q, seg_k = segment[:, :, None], segment[:, None, :]
    allowed = causal & (seg_k >= 0) & ((seg_k == 0) | (seg_k == seg_q))
    allowed |= torch.eye(packed_width, dtype=torch.bool, device=device)[None]  # padding queries: no empty row
    mask = allowed[:, None]
    if attn_impl == "eager":
        mask = torch.zeros(mask.shape, dtype=torch.float32, device=device).masked_fill(
            ~mask, torch.finfo(torch.float32).min)
    return PackPlan(packed, mask, positions, gather, (rows, width), shared_tokens=sum(shared),
                    tokens_unshared=int(sum(lengths)))


class BackbonePacker:
    """The pre-hook and hook on a model's backbone that run an armed :class:`PackPlan` instead of
    the ``2B`` rows, and give back hidden states in the ``2B`` layout."""

    def __init__(self, backbone: Any) -> None:
        self.plan: PackPlan | None = None
        self.shared_tokens = 0
        self.tokens_unshared = 0
        self._handles = [backbone.register_forward_pre_hook(self._pre, with_kwargs=True),
                         backbone.register_forward_hook(self._post, with_kwargs=True)]

    def _pre(self, module: Any, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]] | None:
        plan = self.plan
        ids = kwargs.get("input_ids", args[0] if args else None)
        if plan is None or ids is None or tuple(ids.shape) != plan.rows_shape:
            return None
        kwargs = {**kwargs, "input_ids": plan.input_ids, "attention_mask": plan.attention_mask,
                  "position_ids": plan.position_ids}
        return (), kwargs

    def _post(self, module: Any, args: tuple, kwargs: dict[str, Any], output: Any) -> Any:
        plan = self.plan
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


@cache
def shared_prefix_trainer() -> type:
    """:class:`SharedPrefixDPOTrainer`, built on first use (TRL imports torch and more)."""
    from trl import DPOTrainer

    class SharedPrefixDPOTrainer(DPOTrainer):
        """TRL's DPOTrainer with the shared-prefix forward (module docstring). Everything but the
        backbone's input layout is TRL's: losses, reference handling, metrics."""

        packs_shared_prefix = True

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            model = self.accelerator.unwrap_model(self.model)
            self.packer = BackbonePacker(backbone_of(model))
            inner = model.get_base_model() if hasattr(model, "get_base_model") else model
            self._attn_impl = getattr(inner.config, "_attn_implementation", None) or "sdpa"

        def _compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
            self.packer.plan = plan_batch(inputs["input_ids"], inputs["attention_mask"], self._attn_impl)
            try:
                return super()._compute_loss(model, inputs, return_outputs)
            finally:
                self.packer.plan = None

        def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
            if self.packer.tokens_unshared:
                logs["shared_prefix/saved_fraction"] = self.packer.shared_tokens / self.packer.tokens_unshared
            super().log(logs, *args, **kwargs)

    return SharedPrefixDPOTrainer
