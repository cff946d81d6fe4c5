"""Data ingestion: any supported source -> normalized records (see docs/formats.md, docs/prepare.md)."""

from __future__ import annotations

from pathlib import Path


def demo_path() -> Path:
    """The packaged demo data set (alpaca layout, self-written): ``prepare("demo", ...)`` reads it.

    Facts (history, science, geography), arithmetic word problems with worked solutions
    ending in the number, multi-step reasoning and short Python tasks; each row also has a
    ``category`` field (``fact``, ``arithmetic``, ``reasoning``, ``code``).
    """
    from importlib.resources import files

    return Path(str(files("seapo.data") / "demo" / "demo.jsonl"))


__all__ = ["demo_path"]
