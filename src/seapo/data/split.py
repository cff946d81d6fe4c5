"""``seapo split``: records into seeded parts by record (train / validation / held-out), stable per record.

A record's part depends only on its id (a content hash), the seed and the fractions -- not on which
other records are in the file or in what order -- so the same record lands in the same part in every
run that splits with the same settings, and a study's conditions (whatever negatives each makes) score
the same held-out records. The price of that stability: each part's size is its fraction of the
records give or take binomial noise (the counts are in ``split.json``).
"""

from __future__ import annotations

import hashlib
import json
import re
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from seapo.config import SeapoConfig
from seapo.fingerprint import file_digest
from seapo.io import atomic_open, iter_jsonl, write_json

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class SplitConfig(SeapoConfig):
    """Settings of ``seapo split``."""

    parts: dict[str, float] = Field(
        default_factory=lambda: {"validation": 0.1, "heldout": 0.2},
        description="Each part's name and fraction of the records (by record id); the records left over go to "
                    "the rest part. On the CLI: --set parts.heldout=0.2.")
    rest: str = Field("train", description="Name of the part that gets the records no other part takes.")
    seed: int = Field(0, description="Seed of the assignment: another seed gives another split.")

    @field_validator("parts")
    @classmethod
    def _fractions(cls, value: dict[str, float]) -> dict[str, float]:
        for name, fraction in value.items():
            if not _NAME.match(name):
                raise ValueError(f"part name '{name}' must be letters, digits, '-' or '_' (it names a file)")
            if not 0.0 < fraction < 1.0:
                raise ValueError(f"part '{name}' has fraction {fraction}: it must be in (0, 1)")
        if sum(value.values()) >= 1.0:
            raise ValueError(f"the fractions sum to {sum(value.values()):g}: leave some records for the rest part")
        return value

    @model_validator(mode="after")
    def _rest_is_its_own_part(self) -> SplitConfig:
        if not _NAME.match(self.rest):
            raise ValueError(f"rest part name '{self.rest}' must be letters, digits, '-' or '_'")
        if self.rest in self.parts:
            raise ValueError(f"'{self.rest}' is both a part and the rest part")
        return self


@dataclass
class SplitResult:
    """What :func:`split_records` returns."""

    paths: dict[str, Path]
    """Each part's records file (``OUT/<part>.jsonl``), the rest part last."""
    counts: dict[str, int]
    """Rows per part."""
    manifest: Path
    """``OUT/split.json``: settings, counts, the input's digest."""


def part_of(record_id: str, config: SplitConfig) -> str:
    """The part a record id belongs to: a uniform draw from the hash of seed and id, cut by the fractions."""
    draw = int(hashlib.sha256(f"{config.seed}:{record_id}".encode()).hexdigest()[:15], 16) / 16 ** 15
    edge = 0.0
    for name, fraction in config.parts.items():
        edge += fraction
        if draw < edge:
            return name
    return config.rest


def split_records(records: str | Path, out: str | Path, config: SplitConfig | None = None) -> SplitResult:
    """Write each record of ``records`` (``seapo prepare`` output) to ``OUT/<part>.jsonl``, every row to
    exactly one part (rows sharing a record id to the same one), in input order."""
    from seapo.data.schema import read_records

    config = config or SplitConfig()
    records, out = Path(records), Path(out)
    read_records(records)  # validates every row, naming file, line and field
    out.mkdir(parents=True, exist_ok=True)
    names = [*config.parts, config.rest]
    paths = {name: out / f"{name}.jsonl" for name in names}
    counts = dict.fromkeys(names, 0)
    with ExitStack() as stack:  # every part is written whole or not at all
        files = {name: stack.enter_context(atomic_open(paths[name])) for name in names}
        for _, row in iter_jsonl(records):
            name = part_of(row["id"] if row.get("id") else _record_id(row), config)
            files[name].write(json.dumps(row, ensure_ascii=False) + "\n")
            counts[name] += 1
    manifest = out / "split.json"
    write_json(manifest, {"input": str(records), "input_digest": file_digest(records), "config": config.record(),
                          "counts": counts, "files": {n: p.name for n, p in paths.items()}})
    return SplitResult(paths, counts, manifest)


def _record_id(row: dict[str, Any]) -> str:
    from seapo.data.schema import record_id

    return record_id(row["prompt"], row["response"])
