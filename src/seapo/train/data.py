"""Read training input (pairs, negatives or KTO rows), split off held-out records, select pairs
and put them in training order.

Every accepted input layout becomes a list of :class:`PreferenceGroup` -- one prompt, its
positive and every negative made from it -- so the held-out split (by ``record_id``) and the
pair selection (``mixed``/``all``) work the same way whatever file was given.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seapo.backends.base import common_prefix
from seapo.errors import ConfigError, InputError
from seapo.inject.outputs import SET_MARKERS, STAGE, rerun_hint
from seapo.inject.strategies import draw_mixed
from seapo.io import iter_jsonl
from seapo.outputs import check_member

ROLES = ("system", "user", "assistant")


@dataclass
class Negative:
    """One corrupted response."""

    text: str
    error_type: str
    id: str = ""


@dataclass
class PreferenceGroup:
    """A prompt, its positive response and the negatives injected into it."""

    record_id: str
    prompt: list[dict[str, str]]
    chosen: str | None
    """The positive; None only for KTO input that had no desirable row for this record."""
    negatives: list[Negative] = field(default_factory=list)


@dataclass
class Pair:
    """One training/evaluation pair (what TRL's pairwise trainers consume)."""

    record_id: str
    prompt: list[dict[str, str]]
    chosen: str
    rejected: str
    error_type: str
    id: str = ""

    def to_trl(self) -> dict[str, Any]:
        """TRL's conversational preference layout (``prompt``/``chosen``/``rejected`` message lists)."""
        return {"prompt": self.prompt, "chosen": [{"role": "assistant", "content": self.chosen}],
                "rejected": [{"role": "assistant", "content": self.rejected}]}


@dataclass
class LoadedData:
    groups: list[PreferenceGroup]
    layout: str
    """``pairs`` (pairs.jsonl / negatives.jsonl) or ``kto`` (kto.jsonl)."""
    rows: int


def _check_messages(messages: Any, path: str, line: int, fieldname: str) -> list[dict[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise InputError("must be a non-empty list of {role, content} messages", path=path, line=line,
                         field=fieldname)
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise InputError(f"message {i} must be {{'role': one of {ROLES}, 'content': str}}", path=path,
                             line=line, field=fieldname)
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _content(value: Any, path: str, line: int, fieldname: str) -> str:
    # pairs.jsonl stores {"role": "assistant", "content": ...}; a bare string is accepted too.
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        text = value["content"]
    elif isinstance(value, str):
        text = value
    elif isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        return _content(value[0], path, line, fieldname)
    else:
        raise InputError("must be {'role': 'assistant', 'content': str}", path=path, line=line, field=fieldname)
    if not text.strip():
        raise InputError("is empty", path=path, line=line, field=fieldname)
    return text


def _fallback_id(prompt: list[dict[str, str]], response: str | None) -> str:
    text = json.dumps({"prompt": prompt, "response": response}, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_preferences(path: str | Path) -> LoadedData:
    """Read ``pairs.jsonl``, ``negatives.jsonl`` or ``kto.jsonl`` into groups keyed by ``record_id``.

    The layout is detected per file from its first row (``chosen``/``rejected`` or ``messages``/``label``).
    Raises :class:`InputError` naming file, line and field for any malformed row. A file in a
    ``seapo inject`` output folder is read only when that folder's output set is complete and
    unchanged (:func:`seapo.outputs.check_member`); a file of the user's own is read as it is.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("training input not found", path=str(path))
    check_member(path, stage=STAGE, markers=SET_MARKERS, fix=rerun_hint(path.parent))
    groups: dict[str, PreferenceGroup] = {}
    seen_ids: set[tuple[str, str, str]] = set()
    layout: str | None = None
    rows = 0
    p = str(path)
    for line, row in iter_jsonl(path):
        rows += 1
        if not isinstance(row, dict):
            raise InputError("each line must be a JSON object", path=p, line=line)
        row_layout = "kto" if "messages" in row and "label" in row else "pairs"
        if layout is None:
            layout = row_layout
        elif row_layout != layout:
            raise InputError(f"mixes layouts: expected a '{layout}' row (see docs/formats.md)", path=p, line=line)
        error_type = row.get("error_type", "unknown")
        if not isinstance(error_type, str):
            raise InputError("must be a string", path=p, line=line, field="error_type")
        if layout == "pairs":
            for key in ("prompt", "chosen", "rejected"):
                if key not in row:
                    raise InputError("missing", path=p, line=line, field=key)
            prompt = _check_messages(row["prompt"], p, line, "prompt")
            chosen = _content(row["chosen"], p, line, "chosen")
            rejected = _content(row["rejected"], p, line, "rejected")
        else:
            messages = _check_messages(row["messages"], p, line, "messages")
            if messages[-1]["role"] != "assistant" or len(messages) < 2:
                raise InputError("must end with an assistant message after the prompt", path=p, line=line,
                                 field="messages")
            if not isinstance(row["label"], bool):
                raise InputError("must be true or false", path=p, line=line, field="label")
            prompt = messages[:-1]
            text = _content(messages[-1], p, line, "messages")
            chosen, rejected = (text, None) if row["label"] else (None, text)
        if prompt[-1]["role"] != "user":
            raise InputError("the last prompt message must be from the user", path=p, line=line,
                             field="prompt" if layout == "pairs" else "messages")
        rid = row.get("record_id")
        if rid is not None and not isinstance(rid, str):
            raise InputError("must be a string", path=p, line=line, field="record_id")
        rid = rid or _fallback_id(prompt, chosen)
        group = groups.get(rid)
        if group is None:
            group = groups[rid] = PreferenceGroup(rid, prompt, chosen)
        elif group.prompt != prompt:
            raise InputError(f"record_id '{rid}' has a different prompt than an earlier row", path=p, line=line,
                             field="prompt")
        if chosen is not None:
            if group.chosen is None:
                group.chosen = chosen
            elif group.chosen != chosen:
                raise InputError(f"record_id '{rid}' has a different positive than an earlier row", path=p,
                                 line=line, field="chosen")
        if rejected is not None:
            key = (rid, error_type, rejected)
            if key not in seen_ids:  # pairs.jsonl and negatives.jsonl may repeat a negative: keep it once
                seen_ids.add(key)
                group.negatives.append(Negative(rejected, error_type, str(row.get("id", ""))))
    if not groups:
        raise InputError("has no rows", path=p)
    return LoadedData(list(groups.values()), layout or "pairs", rows)


def preference_rows(groups: Sequence[PreferenceGroup], layout: str) -> list[dict[str, Any]]:
    """The rows of a file that :func:`load_preferences` reads back as ``groups`` (in ``layout``:
    ``pairs`` or ``kto``), each with its ``record_id`` written out: how a subset of the records
    (``seapo tune``'s training records) is handed to ``seapo train``."""
    rows: list[dict[str, Any]] = []
    for g in groups:
        if layout == "pairs":
            rows += [{"id": n.id or f"{g.record_id}-{n.error_type}", "record_id": g.record_id, "prompt": g.prompt,
                      "chosen": {"role": "assistant", "content": g.chosen},
                      "rejected": {"role": "assistant", "content": n.text}, "error_type": n.error_type}
                     for n in g.negatives]
            continue
        answers = ([(g.chosen, True, "unknown", "")] if g.chosen is not None else []) + \
            [(n.text, False, n.error_type, n.id) for n in g.negatives]
        rows += [{"messages": [*g.prompt, {"role": "assistant", "content": text}], "label": label,
                  "record_id": g.record_id, "error_type": error_type, **({"id": id_} if id_ else {})}
                 for text, label, error_type, id_ in answers]
    return rows


def split_heldout(groups: Sequence[PreferenceGroup], fraction: float, seed: int
                  ) -> tuple[list[PreferenceGroup], list[PreferenceGroup]]:
    """Split by record (a prompt never lands on both sides), seeded; returns ``(train, heldout)``."""
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"must be in [0, 1), got {fraction}", field="heldout_fraction", loc=("heldout_fraction",))
    usable = [g for g in groups if g.chosen is not None and g.negatives]
    if fraction == 0.0 or len(usable) < 2:
        return list(groups), []
    ids = sorted(g.record_id for g in usable)  # sorted first: the split must not depend on file order
    random.Random(seed).shuffle(ids)
    n = min(len(ids) - 1, max(1, round(fraction * len(ids))))
    held = set(ids[:n])
    return [g for g in groups if g.record_id not in held], [g for g in groups if g.record_id in held]


def select_pairs(groups: Sequence[PreferenceGroup], pairing: str, seed: int) -> list[Pair]:
    """``mixed``: one negative per record, drawn with a per-record seeded RNG; ``all``: every negative."""
    if pairing not in ("mixed", "all"):
        raise ConfigError(f"must be 'mixed' or 'all', got '{pairing}'", field="pairing", loc=("pairing",))
    pairs: list[Pair] = []
    for g in groups:
        if g.chosen is None or not g.negatives:
            continue
        chosen_negs = g.negatives
        if pairing == "mixed" and len(g.negatives) > 1:
            # The same per-record seeded draw as `seapo inject --strategy mixed` (pairs.jsonl).
            drawn = draw_mixed(g.record_id, sorted({n.error_type for n in g.negatives}), seed)
            chosen_negs = [min((n for n in g.negatives if n.error_type == drawn), key=lambda n: n.text)]
        for n in chosen_negs:
            pairs.append(Pair(g.record_id, g.prompt, g.chosen, n.text, n.error_type,
                              n.id or f"{g.record_id}-{n.error_type}"))
    return pairs


def unpaired_kto_rows(groups: Sequence[PreferenceGroup]) -> list[dict[str, Any]]:
    """KTO rows of records that cannot form a pair (a positive without negatives or the reverse)."""
    rows: list[dict[str, Any]] = []
    for g in groups:
        if g.chosen is not None and not g.negatives:
            rows.append(kto_row(g.prompt, g.chosen, True))
        elif g.chosen is None:
            rows.extend(kto_row(g.prompt, n.text, False) for n in g.negatives)
    return rows


def kto_row(prompt: list[dict[str, str]], completion: str, label: bool) -> dict[str, Any]:
    """TRL's conversational unpaired layout."""
    return {"prompt": prompt, "completion": [{"role": "assistant", "content": completion}], "label": label}


def heldout_pairs_of(groups: Sequence[PreferenceGroup]) -> list[Pair]:
    """Every negative of every held-out record (so each error type gets its own accuracy)."""
    return select_pairs(groups, "all", 0)


def drop_long_prompts(pairs: Sequence[Pair], tokenizer: Any, max_length: int) -> tuple[list[Pair], int]:
    """Pairs whose chat-templated prompt is shorter than ``max_length`` tokens, and how many were not."""
    lengths: dict[str, int] = {}  # one tokenization per prompt: with pairing 'all' a prompt has many pairs
    kept = []
    for p in pairs:
        key = p.record_id or json.dumps(p.prompt)
        if key not in lengths:
            lengths[key] = len(tokenizer.apply_chat_template(p.prompt, add_generation_prompt=True, tokenize=True,
                                                             return_dict=True)["input_ids"])
        if lengths[key] < max_length:
            kept.append(p)
    return kept, len(pairs) - len(kept)


def drop_edits_past_max_length(pairs: Sequence[Pair], tokenizer: Any, max_length: int) -> tuple[list[Pair], int]:
    """Pairs whose two responses still differ within the first ``max_length`` tokens, and how many did
    not. Truncated where training truncates (the end), a pair whose injected error lies past the cut
    is the positive twice: trained on, KTO would push the same text up and down; scored, a tie."""
    kept = [p for p in pairs if encode_response(tokenizer, p.prompt, p.chosen, max_length)[0]
            != encode_response(tokenizer, p.prompt, p.rejected, max_length)[0]]
    return kept, len(pairs) - len(kept)


# --------------------------------------------------------------------------------------------- tokenization


def encode_response(tokenizer: Any, prompt: list[dict[str, str]], response: str,
                    max_length: int | None = None) -> tuple[list[int], int]:
    """Token ids of prompt + response and the index where the response starts (TRL's rule: where
    the prompt with generation prompt and the whole conversation stop sharing tokens)."""
    prompt_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                               return_dict=True)["input_ids"]
    full_ids = tokenizer.apply_chat_template([*prompt, {"role": "assistant", "content": response}],
                                             tokenize=True, return_dict=True)["input_ids"]
    start = common_prefix(prompt_ids, full_ids)
    if max_length is not None:
        full_ids = full_ids[:max_length]  # keep_start truncation, as in training
    return list(full_ids), min(start, len(full_ids))


@dataclass(frozen=True)
class DivergentSplit:
    """A pair cut where its two responses first differ: the chat-templated prompt plus the shared
    response prefix, and the two continuations (text, each ending with the EOS token)."""

    prompt: str
    chosen: str
    rejected: str
    shared_tokens: int
    """Response tokens moved into the prompt."""


def split_at_divergence(tokenizer: Any, pair: Pair) -> DivergentSplit:
    """``focus: divergent``: the shared response prefix of ``pair`` moved into the prompt (Step-DPO's
    construction), so a loss covers only the text from the first differing token on.

    Cut at a token boundary of the full tokenization whose prefix re-tokenizes to itself (at or
    just before the first differing token), so the trainer's own tokenization puts the boundary
    there; at least one token is left in each continuation. The template's text after the
    final EOS (a newline in ChatML) is dropped: TRL appends an EOS to plain-text completions, and
    this way each completion ends with exactly one."""
    c_ids, start = encode_response(tokenizer, pair.prompt, pair.chosen)
    r_ids, _ = encode_response(tokenizer, pair.prompt, pair.rejected)
    div = min(max(common_prefix(c_ids, r_ids), start), len(c_ids) - 1, len(r_ids) - 1)
    # The trainer re-tokenizes the prompt text alone: step back to a cut whose text tokenizes to
    # exactly the tokens before it (a byte-pair merge across the cut would shift the boundary).
    while div > start and tokenizer(_text(tokenizer, c_ids[:div]), add_special_tokens=False)["input_ids"] != \
            c_ids[:div]:
        div -= 1
    return DivergentSplit(_text(tokenizer, c_ids[:div]), _completion(tokenizer, c_ids[div:]),
                          _completion(tokenizer, r_ids[div:]), div - start)


def plain_kto_row(tokenizer: Any, row: dict[str, Any]) -> dict[str, Any]:
    """A conversational KTO row (:func:`kto_row`) as plain text, cut where the response starts: a
    dataset of ``focus: divergent`` rows must be plain text throughout."""
    ids, start = encode_response(tokenizer, row["prompt"], row["completion"][0]["content"])
    return {"prompt": _text(tokenizer, ids[:start]), "completion": _completion(tokenizer, ids[start:]),
            "label": row["label"]}


def _text(tokenizer: Any, ids: Sequence[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def _completion(tokenizer: Any, ids: Sequence[int]) -> str:
    """The text of ``ids`` up to and including its last EOS (see :func:`split_at_divergence`)."""
    rest, eos = _text(tokenizer, ids), tokenizer.eos_token
    return rest[:rest.rindex(eos) + len(eos)] if eos and eos in rest else rest


# --------------------------------------------------------------------------------------------- training order


def _length(p: Pair) -> int:
    return sum(len(m["content"]) for m in p.prompt) + max(len(p.chosen), len(p.rejected))


def _grouped_batches(pairs: Sequence[Pair], micro: int, seed: int, group_by_length: bool) -> list[list[Pair]]:
    """Seeded shuffle; with ``group_by_length`` sort within chunks of 32 micro-batches so a micro-batch
    holds similar lengths (less padding), then shuffle the order of the full micro-batches."""
    rng = random.Random(seed)
    items = list(pairs)
    rng.shuffle(items)
    if group_by_length:
        chunk = micro * 32
        items = [p for i in range(0, len(items), chunk)
                 for p in sorted(items[i:i + chunk], key=_length, reverse=True)]
    batches = [items[i:i + micro] for i in range(0, len(items), micro)]
    full = [b for b in batches if len(b) == micro]
    rng.shuffle(full)
    return full + [b for b in batches if len(b) < micro]  # a partial batch stays last: boundaries stay aligned


def ordered_pair_rows(pairs: Sequence[Pair], micro: int, seed: int, group_by_length: bool, *,
                      tokenizer: Any = None, focus: str = "full") -> list[dict[str, Any]]:
    """Rows for the pairwise trainers, in training order (the trainer reads them sequentially).
    ``focus="divergent"`` (needs ``tokenizer``): plain-text rows cut by :func:`split_at_divergence`."""
    ordered = [p for b in _grouped_batches(pairs, micro, seed, group_by_length) for p in b]
    if focus == "full":
        return [p.to_trl() for p in ordered]
    splits = [split_at_divergence(tokenizer, p) for p in ordered]
    return [{"prompt": s.prompt, "chosen": s.chosen, "rejected": s.rejected} for s in splits]


def kto_pairs_share_a_batch(micro: int) -> bool:
    """Whether :func:`ordered_kto_rows` puts both rows of a pair in one micro-batch of ``micro`` rows:
    an even micro-batch of at least 4 (two pairs), so that TRL's KL rotation still pairs every
    prompt with another prompt's completion."""
    return micro >= 4 and micro % 2 == 0


def ordered_kto_rows(pairs: Sequence[Pair], micro: int, seed: int, group_by_length: bool, *,
                     tokenizer: Any = None, focus: str = "full") -> list[dict[str, Any]]:
    """KTO rows in training order (``micro``: rows per micro-batch), each micro-batch half desirable,
    half undesirable, and never a prompt paired with its own answer by KTO's KL estimate (TRL's KL
    row ``j`` is row ``j``'s prompt with row ``j - 1``'s completion, rotated within the micro-batch).

    * ``micro`` even and >= 4 (:func:`kto_pairs_share_a_batch`): ``micro / 2`` pairs of similar length
      make one micro-batch ``[c0, c1, ..., r0, r1, ...]``: a pair's two rows share a micro-batch (the
      shared-prefix forward runs their common text once), and so do the two KL rows of each prompt
      (prompt ``i`` with both responses of pair ``i - 1``).
    * otherwise (``micro`` = 2 on CPU without the shared prefix): ``micro`` pairs make two
      micro-batches, ``[c0, r1, c2, ...]`` and ``[r0, c1, r2, ...]``, each with ``micro`` prompts.

    ``focus="divergent"`` (needs ``tokenizer``): both rows of a pair get the same extended prompt
    (:func:`split_at_divergence`), so the shared text is neither pushed up in the positive nor down in
    the negative."""

    def rows_of(p: Pair) -> tuple[dict[str, Any], dict[str, Any]]:
        if focus == "full":
            return kto_row(p.prompt, p.chosen, True), kto_row(p.prompt, p.rejected, False)
        s = split_at_divergence(tokenizer, p)
        return ({"prompt": s.prompt, "completion": s.chosen, "label": True},
                {"prompt": s.prompt, "completion": s.rejected, "label": False})

    together = kto_pairs_share_a_batch(micro)
    rows: list[dict[str, Any]] = []
    for batch in _grouped_batches(pairs, micro // 2 if together else micro, seed, group_by_length):
        both = [rows_of(p) for p in batch]
        if together:
            rows.extend([c for c, _ in both] + [r for _, r in both])
            continue
        a = [both[i][0 if i % 2 == 0 else 1] for i in range(len(batch))]
        b = [both[i][1 if i % 2 == 0 else 0] for i in range(len(batch))]
        rows.extend(a + b)
    return rows
