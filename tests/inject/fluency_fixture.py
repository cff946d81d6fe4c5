"""The hand-checked fluency pairs (tests/inject/data/fluency_pairs.jsonl) rebuilt from the shared data.

The fixture holds no data set text of its own: each row names a shared file and line (the positive is
that row's response, as `seapo prepare` reads it) and the rules injector's edits as character spans
``[start, end, replacement]``; the negative is the positive with the edits applied. Labels: ``fluent``
(the edit reads as grammatical, on-topic text, whether or not it is a good error) or ``broken``
(ungrammatical, garbled, a language switch, or an off-topic sentence), each broken one with a note.
They were judged by reading every edit in context (docs/fluency.md).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from seapo.inspect.data import apply_edits

FIXTURE = Path(__file__).with_name("data") / "fluency_pairs.jsonl"


def load_fluency_pairs(shared_data: Path) -> list[dict[str, Any]]:
    """Rows of the fixture with ``positive`` and ``negative`` filled in."""
    from seapo.data.prepare import prepare
    from seapo.data.schema import read_records

    rows = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
    responses: dict[tuple[str, int], str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted({r["file"] for r in rows}):
            out = Path(tmp) / "records.jsonl"
            prepare(shared_data / name, out=out, progress=False)
            responses.update({(name, r.source["line"]): r.response for r in read_records(out)})
    for row in rows:
        row["positive"] = responses[(row["file"], row["line"])]
        row["negative"] = apply_edits(row["positive"], row["edits"])
    return rows
