"""Input layouts: how each known row shape maps to a prompt (chat messages) and a response.

Each layout has a ``convert`` that either returns a :class:`Converted` row or raises
:class:`RowError` (the row is bad: it goes to the rejects file with its field and reason)
or :class:`RowFiltered` (the row is fine but is not a positive, e.g. a KTO row labelled
``false``: it is counted as filtered, not rejected). ``matches`` looks only at a row's
keys (and the type of ``chosen``), which is what auto-detection uses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

ROLE_ALIASES = {"user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant",
                "system": "system"}
"""Role names accepted in messages (ShareGPT ``from`` or OpenAI ``role``) and what they map to."""

ROW = "<row>"
"""The ``field`` of a reject that concerns the whole row (unparseable, not an object)."""

_GSM8K_CALCULATION = re.compile(r"<<[^<>]*>>")


class RowError(Exception):
    """A row that cannot become a record: names the field and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")


class RowFiltered(RowError):
    """A valid row that is deliberately not kept (e.g. a KTO row labelled ``false``)."""


@dataclass
class Converted:
    """What a layout extracts from one row."""

    prompt: list[dict[str, str]]
    response: str
    rejected: str | None = None


@dataclass
class FieldOptions:
    """The parts of :class:`~seapo.data.prepare.PrepareConfig` that layouts read."""

    prompt_field: str | None = None
    response_field: str | None = None
    rejected_field: str | None = None
    system_field: str | None = None
    clean_gsm8k: bool = True


@dataclass(frozen=True)
class Layout:
    name: str
    description: str
    """Which fields the layout reads (shown in errors and ``--help``)."""
    convert: Callable[[Mapping[str, Any], FieldOptions], Converted]
    matches: Callable[[Mapping[str, Any]], bool]


# ---------------------------------------------------------------- value checks

def type_name(value: Any) -> str:
    """JSON names for Python types, so messages speak the user's file format."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def check_text(value: Any, field: str, *, required: bool = True) -> str | None:
    """The stripped text of ``value``; None for an absent optional value; RowError otherwise."""
    if value is None:
        if required:
            raise RowError(field, "is null, expected text")
        return None
    if not isinstance(value, str):
        raise RowError(field, f"expected text, got {type_name(value)}")
    value = value.strip()
    if not value:
        if required:
            raise RowError(field, "is empty")
        return None
    return value


def get_text(row: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    if key not in row:
        if required:
            raise RowError(key, "missing")
        return None
    return check_text(row[key], key, required=required)


def require(row: Mapping[str, Any], key: str) -> Any:
    if key not in row:
        raise RowError(key, "missing")
    if row[key] is None:
        raise RowError(key, "is null")
    return row[key]


def message(value: Any, field: str) -> dict[str, str]:
    """One chat message, ``{role, content}`` or ShareGPT ``{from, value}``, normalized."""
    if not isinstance(value, Mapping):
        raise RowError(field, f"expected a message object ({{role, content}} or {{from, value}}), "
                              f"got {type_name(value)}")
    role_key = "role" if "role" in value or "from" not in value else "from"
    if "content" in value or "value" in value:
        content_key = "content" if "content" in value else "value"
    else:  # neither: name the one that matches the role key's style in the error
        content_key = "value" if role_key == "from" else "content"
    if role_key not in value:
        raise RowError(f"{field}.role", "missing")
    role = value[role_key]
    if not isinstance(role, str):
        raise RowError(f"{field}.{role_key}", f"expected a role name, got {type_name(role)}")
    mapped = ROLE_ALIASES.get(role.strip().lower())
    if mapped is None:
        raise RowError(f"{field}.{role_key}", f"unknown role '{role}'; expected one of "
                                              f"{', '.join(ROLE_ALIASES)}")
    if content_key not in value:
        raise RowError(f"{field}.{content_key}", "missing")
    content = check_text(value[content_key], f"{field}.{content_key}")
    return {"role": mapped, "content": content}


def messages(value: Any, field: str) -> list[dict[str, str]]:
    """A non-empty list of messages."""
    if value is None:
        raise RowError(field, "is null, expected a list of messages")
    if not isinstance(value, (list, tuple)):
        raise RowError(field, f"expected a list of messages, got {type_name(value)}")
    if not value:
        raise RowError(field, "is empty")
    return [message(m, f"{field}[{i}]") for i, m in enumerate(value)]


def check_prompt(prompt: list[dict[str, str]], field: str) -> list[dict[str, str]]:
    """A prompt must end with the user's turn (what the response answers); a system
    message may only come first (chat templates reject it elsewhere)."""
    if not prompt:
        raise RowError(field, "no prompt messages before the response")
    for i, m in enumerate(prompt):
        if m["role"] == "system" and i > 0:
            raise RowError(f"{field}[{i}]", "system message after the first turn")
    if prompt[-1]["role"] != "user":
        raise RowError(field, f"prompt must end with a user turn, it ends with '{prompt[-1]['role']}'")
    return prompt


def prompt_value(value: Any, field: str) -> list[dict[str, str]]:
    """A prompt given as plain text (one user turn) or as a list of messages."""
    if isinstance(value, (list, tuple)):
        return check_prompt(messages(value, field), field)
    return [{"role": "user", "content": check_text(value, field)}]


def assistant_text(value: Any, field: str, *, required: bool = True) -> str | None:
    """A response given as text or as one assistant message (ShareGPT ``{from: gpt, value}``)."""
    if isinstance(value, Mapping):
        m = message(value, field)
        if m["role"] != "assistant":
            raise RowError(field, f"role is '{m['role']}', expected an assistant (gpt) message")
        return m["content"]
    return check_text(value, field, required=required)


def last_assistant(value: Any, field: str) -> tuple[list[dict[str, str]], str]:
    """(messages before the last assistant message, its content) from a message list."""
    msgs = messages(value, field)
    for i in range(len(msgs) - 1, -1, -1):
        if msgs[i]["role"] == "assistant":
            return msgs[:i], msgs[i]["content"]
    raise RowError(field, "has no assistant message")


# ---------------------------------------------------------------- layouts

def _ultrafeedback(row: Mapping[str, Any], opts: FieldOptions) -> Converted:
    chosen = require(row, "chosen")
    if isinstance(chosen, (list, tuple)):
        before, response = last_assistant(chosen, "chosen")
    else:  # TRL's plain-text rows, or one assistant message (seapo's own pairs.jsonl)
        before, response = [], assistant_text(chosen, "chosen")
    if before:
        prompt = check_prompt(before, "chosen")
    else:  # chosen holds only the answer (TRL conversational): the prompt is in "prompt"
        prompt = prompt_value(require(row, "prompt"), "prompt")
    rejected = row.get("rejected")
    if isinstance(rejected, (list, tuple)):
        rejected = last_assistant(rejected, "rejected")[1]
    else:
        rejected = assistant_text(rejected, "rejected", required=False)
    return Converted(prompt, response, rejected)


def _sharegpt_dpo(row: Mapping[str, Any], opts: FieldOptions) -> Converted:
    prompt = check_prompt(messages(require(row, "conversations"), "conversations"), "conversations")
    response = assistant_text(require(row, "chosen"), "chosen")
    rejected = assistant_text(row.get("rejected"), "rejected", required=False)
    return Converted(prompt, response, rejected)


def _label(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):  # CSV cells are text
        return value.strip().lower() == "true"
    raise RowError("label", f"expected true or false, got {type_name(value)} {value!r}")


def _sharegpt_kto(row: Mapping[str, Any], opts: FieldOptions) -> Converted:
    if not _label(require(row, "label")):
        raise RowFiltered("label", "label is false: the response is an undesired one, not a positive")
    key = "messages" if "messages" in row else "conversations"
    msgs = messages(require(row, key), key)
    if msgs[-1]["role"] != "assistant":
        raise RowError(f"{key}[{len(msgs) - 1}]", "the last message must be the assistant's response, "
                                                  f"it is '{msgs[-1]['role']}'")
    return Converted(check_prompt(msgs[:-1], key), msgs[-1]["content"])


def _alpaca(row: Mapping[str, Any], opts: FieldOptions) -> Converted:
    instruction = get_text(row, "instruction")
    extra = get_text(row, "input", required=False)
    # LLaMA-Factory's alpaca preference rows carry chosen/rejected instead of output.
    response_key = "chosen" if "output" not in row and "chosen" in row else "output"
    response = assistant_text(require(row, response_key), response_key)
    rejected = assistant_text(row.get("rejected"), "rejected", required=False)
    prompt: list[dict[str, str]] = []
    system = get_text(row, "system", required=False)
    if system:
        prompt.append({"role": "system", "content": system})
    history = row.get("history")
    if history is not None:
        if not isinstance(history, (list, tuple)):
            raise RowError("history", f"expected a list of [instruction, response] pairs, got "
                                      f"{type_name(history)}")
        for i, pair in enumerate(history):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise RowError(f"history[{i}]", "expected an [instruction, response] pair")
            prompt.append({"role": "user", "content": check_text(pair[0], f"history[{i}][0]")})
            prompt.append({"role": "assistant", "content": check_text(pair[1], f"history[{i}][1]")})
    # Same joining as LLaMA-Factory, so prompts match what it would train on.
    prompt.append({"role": "user", "content": f"{instruction}\n{extra}" if extra else instruction})
    return Converted(prompt, response, rejected)


def _gsm8k(row: Mapping[str, Any], opts: FieldOptions) -> Converted:
    question = get_text(row, "question")
    answer = get_text(row, "answer")
    if opts.clean_gsm8k:
        # "<<48/2=24>>" is calculator-tool markup, not prose; a policy trained on it would copy it.
        answer = _GSM8K_CALCULATION.sub("", answer).strip()
        if not answer:
            raise RowError("answer", "is empty once calculator annotations are removed")
    return Converted([{"role": "user", "content": question}], answer)


def _seapo(row: Mapping[str, Any], opts: FieldOptions) -> Converted:
    prompt = prompt_value(require(row, "prompt"), "prompt")
    response = get_text(row, "response")
    return Converted(prompt, response, get_text(row, "rejected", required=False))


def _generic(row: Mapping[str, Any], opts: FieldOptions) -> Converted:
    if not opts.prompt_field or not opts.response_field:
        raise ValueError("the generic layout needs prompt_field and response_field")
    prompt = prompt_value(require(row, opts.prompt_field), opts.prompt_field)
    if opts.system_field:
        system = get_text(row, opts.system_field, required=False)
        if system and prompt[0]["role"] != "system":
            prompt = [{"role": "system", "content": system}, *prompt]
    response = assistant_text(require(row, opts.response_field), opts.response_field)
    rejected = None
    if opts.rejected_field:
        rejected = assistant_text(row.get(opts.rejected_field), opts.rejected_field, required=False)
    return Converted(prompt, response, rejected)


def _has(*keys: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda row: all(k in row for k in keys)


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout("ultrafeedback", "prompt + chosen/rejected message lists; the positive is the last "
               "assistant message of chosen (HuggingFaceH4/ultrafeedback_binarized, TRL preference rows)",
               _ultrafeedback,
               lambda r: "chosen" in r and "conversations" not in r and "instruction" not in r
               and ("prompt" in r or isinstance(r["chosen"], (list, tuple)))),
        Layout("sharegpt_dpo", "conversations [{from, value}] + chosen {from, value} + rejected "
               "{from, value} (LLaMA-Factory sharegpt ranking)", _sharegpt_dpo,
               _has("conversations", "chosen")),
        Layout("sharegpt_kto", "messages [{role, content} or {from, value}] + boolean label; only "
               "label=true rows are positives (LLaMA-Factory sharegpt KTO)", _sharegpt_kto,
               lambda r: "label" in r and ("messages" in r or "conversations" in r)),
        Layout("alpaca", "instruction, input, output (optional system, history; or chosen/rejected "
               "instead of output)", _alpaca,
               lambda r: "instruction" in r and ("output" in r or "chosen" in r)),
        Layout("gsm8k", "question, answer (worked solution ending '#### <number>')", _gsm8k,
               _has("question", "answer")),
        Layout("seapo", "prompt [{role, content}] or text + response (+ rejected): seapo's own "
               "normalized records", _seapo, _has("prompt", "response")),
        Layout("generic", "any fields, named with prompt_field/response_field (--prompt-field, "
               "--response-field; optional rejected and system fields)", _generic, lambda r: False),
    )
}
"""Every known layout by name; ``generic`` is never auto-detected."""


def candidates(row: Mapping[str, Any]) -> list[str]:
    """Layouts whose keys a row has."""
    return [name for name, layout in LAYOUTS.items() if layout.matches(row)]


def describe_layouts() -> str:
    return "; ".join(f"{name}: {layout.description}" for name, layout in LAYOUTS.items())
