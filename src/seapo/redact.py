"""Secrets never reach a file or a log: redaction of settings and command lines before they are
written (``config.yaml``, ``environment.json``, ``settings.json``, ``metrics.json``, reports).

Two rules, applied together: the value of a setting whose *name* looks secret (``api_key``,
``hf_token``, ``client_secret``, ``password``, ...) is replaced whole; and a *value* that looks
like a credential wherever it appears (``hf_...`` Hub tokens, ``sk-...`` API keys, bearer
tokens, the password of a ``scheme://user:password@host`` URL) is replaced in place. Secrets
belong in the environment: seapo reads them from there and writes only the variable's name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

REDACTED = "<redacted>"

# Setting names: *key*, *token* (not max_new_tokens, token counts or the *name* of the environment
# variable that holds the secret: api_key_env), *secret*, *password*, *auth*.
_SECRET_NAME = re.compile(r"(api[_-]?key|access[_-]?key|private[_-]?key|(^|[_-])keys?$|secret|passw(or)?d|"
                          r"(^|[_-])auth($|[_-])|authori[sz]ation|credential|(^|[_-])token$|^token|[_-]token[_-]|"
                          r"hf[_-]?token|bearer)", re.IGNORECASE)
_NOT_SECRET_NAME = re.compile(r"(max|min|num|n)[_-].*tokens?|tokens?[_-](count|budget|limit)|_env$|_var$|"
                              r"[_-]env[_-]var|tokenizer", re.IGNORECASE)
_SECRET_VALUE = re.compile(
    r"\bhf_[A-Za-z0-9]{8,}"  # Hugging Face tokens
    r"|\bsk-[A-Za-z0-9_\-]{8,}"  # OpenAI-style keys (sk-..., sk-proj-...)
    r"|\b(gh[pousr]|github_pat)_[A-Za-z0-9_]{8,}"  # GitHub tokens
    r"|\bxox[abpr]-[A-Za-z0-9\-]{8,}"  # Slack tokens
    r"|(?<=Bearer )[A-Za-z0-9._\-]{8,}"  # Authorization: Bearer ...
    r"|(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"  # user:password@ in URLs
)


def is_secret_name(name: str) -> bool:
    """Whether a setting or option called ``name`` holds a secret (``api_key``, ``--hf-token``)."""
    bare = name.lstrip("-")
    return bool(_SECRET_NAME.search(bare)) and not _NOT_SECRET_NAME.search(bare)


def redact_text(text: str) -> str:
    """``text`` with every credential-looking value replaced by ``<redacted>``."""
    return _SECRET_VALUE.sub(REDACTED, text)


def redact(obj: Any) -> Any:
    """A copy of settings data (mappings, lists, strings) with secret names and values redacted."""
    if isinstance(obj, Mapping):
        return {k: (REDACTED if isinstance(k, str) and is_secret_name(k) and obj[k] not in (None, "")
                    else redact(v)) for k, v in obj.items()}
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, Sequence) and not isinstance(obj, bytes | bytearray):
        return [redact(v) for v in obj]
    return obj


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A command line with the values of secret options redacted: ``--api-key X``,
    ``--api-key=X``, ``--set llm.api_key=X`` and any credential-looking word."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        name, eq, value = arg.partition("=")
        if arg.startswith("-") and is_secret_name(name):
            if eq:
                out.append(f"{name}={REDACTED}")
            else:
                out.append(arg)
                hide_next = True
            continue
        if eq and not arg.startswith("-") and is_secret_name(name.rsplit(".", 1)[-1]):  # --set k.api_key=X
            out.append(f"{name}={REDACTED}")
            continue
        out.append(redact_text(arg))
    return out
