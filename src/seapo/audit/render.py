"""The audit as a table (rich for the terminal, markdown for a run's report), from its dict form
(:meth:`AuditReport.to_dict`, as summary.json and ``seapo audit --out`` hold it)."""

from __future__ import annotations

from typing import Any

COLUMNS = ("scope", "pairs", "test records", "accuracy", "95% interval", "median len ratio", "mean len ratio",
           "neg. longer", "top negative n-grams", "top positive n-grams")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def rows(report: dict[str, Any], *, ngrams: int = 4) -> list[list[str]]:
    """One row per scope (each type, then overall): the cells of :data:`COLUMNS`."""
    out = []
    for name, audit in [*report["per_type"].items(), ("overall", report["overall"])]:
        accuracy = _fmt(audit["accuracy"]) if audit["status"] == "ok" else audit["status"]
        if audit.get("warning"):
            accuracy += " (!)"
        interval = "-" if not audit["interval"] else f"{audit['interval'][0]:.2f}-{audit['interval'][1]:.2f}"
        length = audit["length"]
        tops = [", ".join(f'"{g["ngram"]}"' for g in audit["top_ngrams"][side][:ngrams]) or "-"
                for side in ("negative", "positive")]
        out.append([name, str(audit["pairs"]), str(audit["test_records"]), accuracy, interval,
                    _fmt(length["median_ratio"]), _fmt(length["mean_ratio"]), _fmt(length["negative_longer"]), *tops])
    return out


def markdown(report: dict[str, Any]) -> list[str]:
    """The table and the warnings as markdown lines."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "| " + " | ".join("---" for _ in COLUMNS) + " |"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows(report)]
    lines += ["", *(f"**Warning**: {w}." for w in report.get("warnings", []))]
    return lines


SHORT_COLUMNS = 7
"""The terminal table keeps the figures; the n-grams follow it as lines (they do not fit a column)."""


def rich_table(report: dict[str, Any], title: str | None = None):
    from rich.table import Table

    table = Table(title=title)
    for column in COLUMNS[:SHORT_COLUMNS]:
        table.add_column(column, justify="left" if column == "scope" else "right")
    for row in rows(report):
        table.add_row(*row[:SHORT_COLUMNS], style="bold red" if row[3].endswith("(!)") else None)
    return table


def ngram_lines(report: dict[str, Any], *, ngrams: int = 6) -> list[str]:
    """Per scope, the most predictive n-grams of each side (for under the terminal table)."""
    return [f"{row[0]}: negative {row[8]}; positive {row[9]}" for row in rows(report, ngrams=ngrams)
            if row[8] != "-" or row[9] != "-"]
