"""The LLM judge's instruction and the strict parser of what a model sends back.

The prompt gives the three definitions of :mod:`seapo.inject.error_types` (the ones the injector
is given), the question, the reference and the response, and asks for exactly one JSON object::

    {"correctness": true, "logic": false, "hallucination": null, "rationale": "..."}

``true``: the error type is present in the response; ``false``: absent; ``null``: the judge cannot
tell (allowed: a judge must never guess, so "unknown" is a legitimate answer, not a failure).

:func:`parse_verdict` is strict. It finds the object inside prose or a code fence, but fails --
with one named *kind*, which the judge counts and retries -- on:

* ``empty``: no text at all;
* ``no_json``: text without any ``{``;
* ``truncated``: a ``{`` whose object never closes (the token limit cut it);
* ``invalid_json``: braces that do not parse as JSON;
* ``several_objects``: two or more verdict objects that disagree (identical repeats are one);
* ``missing_keys``: an error type missing;
* ``unknown_keys``: a key that is neither an error type nor ``rationale`` (``syntax``, ``errors``);
* ``non_boolean``: a value other than true, false or null (``"yes"``, ``1``, ``"present"``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from seapo.inject.error_types import ALL_ERROR_TYPES, ErrorType

PROMPT_VERSION = "judge-v1"
"""Changes whenever the prompt or the parser changes what a verdict is (part of the fingerprint)."""

JUDGE_PROMPT = """\
You are a strict reviewer. Check the response below for errors of three types, using the \
reference as the correct answer.

Error types:
{definitions}

Question:
{question}

{reference_block}Response to check:
{response}

For each error type say whether the response contains it: true (it does), false (it does not) \
or null (you cannot tell). A response that only leaves things out, or says the same thing in \
other words, contains no error. Reply with one JSON object and nothing else, exactly these keys:
{{"correctness": true|false|null, "logic": true|false|null, "hallucination": true|false|null, \
"rationale": "one short sentence"}}"""

FAILURE_KINDS = ("empty", "no_json", "truncated", "invalid_json", "several_objects", "missing_keys",
                 "unknown_keys", "non_boolean")

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {**{t.value: {"type": ["boolean", "null"]} for t in ALL_ERROR_TYPES},
                   "rationale": {"type": "string"}},
    "required": [t.value for t in ALL_ERROR_TYPES] + ["rationale"],
    "additionalProperties": False,
}
"""The verdict object as a JSON schema, for backends with constrained decoding."""


def definitions() -> str:
    return "\n".join(f"- {t.value}: {t.description}" for t in ALL_ERROR_TYPES)


def reference_block(reference: str | None, correct: tuple[str, ...] = (), incorrect: tuple[str, ...] = ()) -> str:
    """What the response is measured against: the reference text and any known right/wrong answers."""
    parts = []
    if reference:
        parts.append(f"Reference (correct) response:\n{reference.strip()}\n")
    if correct:
        parts.append("Known correct answers: " + "; ".join(a.strip() for a in correct) + "\n")
    if incorrect:
        parts.append("Known incorrect answers: " + "; ".join(a.strip() for a in incorrect) + "\n")
    return "\n".join(parts) + ("\n" if parts else "")


def build_judge_prompt(question: str, response: str, reference: str | None = None, correct: tuple[str, ...] = (),
                       incorrect: tuple[str, ...] = (), template: str = JUDGE_PROMPT) -> str:
    return template.format(definitions=definitions(), question=question.strip(),
                           reference_block=reference_block(reference, correct, incorrect), response=response.strip())


@dataclass(frozen=True)
class ParsedVerdict:
    """A verdict object that passed every check: a finding per type (True/False/None) and the rationale."""

    values: dict[ErrorType, bool | None]
    rationale: str


@dataclass(frozen=True)
class ParseFailure:
    kind: str
    """One of :data:`FAILURE_KINDS`."""
    message: str


_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


def _closes(text: str, start: int) -> bool:
    """Whether the brace at ``start`` is ever closed (strings skipped): if not, the output was cut."""
    depth, in_string, escaped = 0, False, False
    for ch in text[start:]:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return True
    return False


def _objects(text: str) -> tuple[list[dict[str, Any]], str | None]:
    """Every top-level JSON object in ``text`` and, when none parses, why (truncated / invalid)."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    problem: str | None = None
    i = 0
    while (k := text.find("{", i)) != -1:
        try:
            obj, end = decoder.raw_decode(text, k)
        except json.JSONDecodeError:
            # A brace never closed: the output stopped inside the object.
            if problem is None:
                problem = "invalid_json" if _closes(text, k) else "truncated"
            i = k + 1
            continue
        if isinstance(obj, dict):
            found.append(obj)
        i = end
    return found, problem


def _check(obj: dict[str, Any]) -> ParsedVerdict | ParseFailure:
    keys = {str(k).strip().lower(): v for k, v in obj.items()}
    names = {t.value for t in ALL_ERROR_TYPES}
    unknown = sorted(k for k in keys if k not in names and k != "rationale")
    if unknown:
        return ParseFailure("unknown_keys", f"keys that are not error types: {unknown}")
    missing = sorted(names - set(keys))
    if missing:
        return ParseFailure("missing_keys", f"error types missing: {missing}")
    bad = {k: keys[k] for k in names if keys[k] is not None and not isinstance(keys[k], bool)}
    if bad:
        return ParseFailure("non_boolean", f"values must be true, false or null: {bad}")
    rationale = keys.get("rationale")
    return ParsedVerdict({t: keys[t.value] for t in ALL_ERROR_TYPES},
                         rationale.strip() if isinstance(rationale, str) else "" if rationale is None else
                         json.dumps(rationale))


def parse_verdict(text: str | None) -> ParsedVerdict | ParseFailure:
    """The one verdict in a model's output, or why there is none (see the module docstring)."""
    if text is None or not text.strip():
        return ParseFailure("empty", "the judge returned no text")
    if "{" not in text:
        return ParseFailure("no_json", "no JSON object in the output")
    fenced = _FENCE.findall(text)
    # A verdict in a fence wins over braces in the surrounding prose; an unclosed fence is left to the scan.
    candidates, problem = _objects("\n".join(fenced)) if fenced else ([], None)
    if not candidates:
        candidates, problem = _objects(text)
    if not candidates:
        return ParseFailure(problem or "invalid_json", "no JSON object parses"
                            + (" (the output ends inside one)" if problem == "truncated" else ""))
    checked = [_check(c) for c in candidates]
    verdicts = [c for c in checked if isinstance(c, ParsedVerdict)]
    if not verdicts:
        return checked[0]  # type: ignore[return-value] - every one failed: report the first reason
    distinct = {tuple(v.values.values()) for v in verdicts}
    if len(distinct) > 1:
        return ParseFailure("several_objects", f"{len(verdicts)} verdict objects that disagree")
    return verdicts[0]
