"""Write the inspector: the page template with its script, style and the run's data inlined."""

from __future__ import annotations

import base64
import gzip
import html
import json
from importlib import resources
from pathlib import Path

from seapo.errors import InputError
from seapo.inspect.config import InspectConfig
from seapo.inspect.data import collect, find_inject_dir
from seapo.io import atomic_open

ASSETS = ("inspect.html", "inspect.css", "inspect.js")


def _asset(name: str) -> str:
    return (resources.files("seapo.inspect") / "assets" / name).read_text(encoding="utf-8")


def render(data: dict, config: InspectConfig) -> str:
    """The HTML page of ``data`` (:func:`seapo.inspect.data.collect`). Data only ever reaches the page
    as JSON in a ``<script type="application/json">`` (with ``<`` escaped) or as base64, and the script
    puts it into the page as text nodes, never as markup."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if config.compress:
        payload, encoding = base64.b64encode(gzip.compress(text.encode("utf-8"), 6, mtime=0)).decode("ascii"), "gzip"
    else:
        payload, encoding = text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"), \
            "json"
    title = html.escape(data["meta"]["title"], quote=False)
    page = _asset("inspect.html")
    for key, value in (("TITLE", title), ("STYLE", _asset("inspect.css")), ("SCRIPT", _asset("inspect.js")),
                       ("ENCODING", encoding)):
        page = page.replace("{{" + key + "}}", value)
    head, tail = page.split("{{DATA}}")  # last: the payload itself is never searched for placeholders
    return head + payload + tail


def inspect_run(run_dir: str | Path, config: InspectConfig | None = None) -> Path:
    """Write the inspector of a ``seapo run`` directory (or a ``seapo inject --out`` folder) and return
    its path (``config.out``, default ``RUN_DIR/report.html``): one static HTML file that opens from disk,
    offline, with no server."""
    config = config or InspectConfig()
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError("no such run directory", path=str(run_dir))
    if find_inject_dir(run_dir) is None:
        raise InputError("no injection outputs here (summary.json or pairs.jsonl, in it or in inject/): give a "
                         "`seapo run` directory or a `seapo inject --out` folder", path=str(run_dir))
    out = Path(config.out) if config.out else run_dir / "report.html"
    page = render(collect(run_dir, config), config)
    with atomic_open(out) as f:
        f.write(page)
    return out
