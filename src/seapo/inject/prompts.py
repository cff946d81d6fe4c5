"""The LLM injector's instruction (after the paper) and clean-up of what models send back."""

from __future__ import annotations

import re

from seapo.inject.error_types import ErrorType

INJECTION_PROMPT = """\
Below is a question and a response to it. Rewrite the response so that it contains an error \
of the type given below.

Error type: {error_type}
Description: {description}

Question:
{question}

Original response:
{response}

Keep the language, style, format and length of the original response and change only what \
is needed to introduce the error. Do not point out, mark or explain the error. Output only \
the revised response and nothing else."""

_PREAMBLE = re.compile(
    r"^\s*(?:(?:sure|okay|ok|certainly|of course)[!,.]?\s*)?"
    r"(?:here(?:'s| is)\s+(?:the|a|my|your)\s+(?:revised|modified|updated|rewritten|new|corrupted)\s+"
    r"(?:response|answer|version|text)[^:\n]*[:.]|"
    r"(?:\*\*)?(?:revised|modified|rewritten|updated)\s+(?:response|answer|version)(?:\*\*)?\s*:(?:\*\*)?)\s*",
    re.IGNORECASE,
)
_TRAILING_NOTE = re.compile(
    r"\n\s*(?:\(?\s*(?:note|explanation|error introduced|the error)\b[^\n]*)\s*$", re.IGNORECASE
)


def build_injection_prompt(question: str, response: str, error_type: ErrorType,
                           template: str = INJECTION_PROMPT) -> str:
    return template.format(error_type=error_type.value, description=error_type.description,
                           question=question.strip(), response=response.strip())


def clean_injection_output(text: str, original: str) -> str:
    """Strip what models wrap around the answer: preambles, quotes, fences, trailing notes."""
    text = text.strip()
    for _ in range(2):  # "Sure! Here is the revised response:" can come in two parts
        text = _PREAMBLE.sub("", text, count=1).strip()
    # Fences or quotes around the whole text that the original did not have.
    if text.startswith("```") and text.endswith("```") and not original.lstrip().startswith("```"):
        text = re.sub(r"^```[\w-]*\n?|\n?```$", "", text).strip()
    for quote in ('"', "'", "“"):
        closing = "”" if quote == "“" else quote
        if len(text) > 1 and text[0] == quote and text[-1] == closing and original.strip()[:1] != quote:
            text = text[1:-1].strip()
    text = _TRAILING_NOTE.sub("", text).strip()
    return text
