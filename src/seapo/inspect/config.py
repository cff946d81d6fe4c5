"""Settings of ``seapo inspect`` (and of the ``report.html`` a ``seapo run`` writes)."""

from __future__ import annotations

from pydantic import Field

from seapo.config import SeapoConfig


class InspectConfig(SeapoConfig):
    """Settings of :func:`seapo.inspect.inspect_run`."""

    out: str | None = Field(None, description="Where to write the HTML file (default: RUN_DIR/report.html).")
    records: str | None = Field(None, description="Records JSONL of `seapo prepare`, to show the prompt and "
                                "positive of rejected items (default: RUN_DIR/data/records.jsonl, or the "
                                "records.jsonl beside a bare inject folder, when there is one).")
    compress: bool = Field(True, description="Embed the data gzip-compressed and base64-encoded (unpacked in the "
                           "browser with DecompressionStream); off: plain JSON, larger but readable.")
    title: str | None = Field(None, description="Page title (default: 'seapo run' and the folder's name).")
    max_text_chars: int = Field(200_000, ge=1_000, description="Longest text kept per field (prompt, positive, "
                                "negative, attempt); longer ones are cut, and the page says so.")
