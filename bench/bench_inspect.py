"""The run inspector at scale: a 60,000-pair run written, opened and filtered in headless Chromium.

    python bench/bench_inspect.py [--pairs 60000] [--shared ../shared/data]

The pairs are the shared UltraFeedback sample's real prompts and responses, one edit each (the
slow test tests/inspect/test_scale.py does the same and asserts the limits). Peers: the limits the
test states, 60 s to open and draw the page, 5 s for a filter or a search; the ratio printed is
limit / measured. Needs Debian's chromium + chromium-driver and selenium (what the tests use).
The load average is printed with it: the figures move with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the test's own run builder and browser, so both measure the same

from bench._shared import SHARED  # noqa: E402
from tests.inspect.conftest import headless_chromium  # noqa: E402
from tests.inspect.test_scale import FILTER_LIMIT_S, LOAD_LIMIT_S, PAIRS, measure_scale  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=PAIRS, help=f"pairs in the synthetic run (default {PAIRS})")
    parser.add_argument("--shared", default=str(SHARED), help="the shared data folder")
    args = parser.parse_args()
    source = Path(args.shared) / "source" / "ultrafeedback" / "train_1k.jsonl"
    print(f"{args.pairs} pairs from {source}; load average before: {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as folder, headless_chromium() as browser:
        report, _, _ = measure_scale(browser, Path(folder), source, args.pairs)
    print(f"report.html {report['html_mb']} MB, written in {report['write_s']} s")
    print(f"open until drawn: {report['load_s']} s ({LOAD_LIMIT_S / max(report['load_s'], 1e-9):.1f}x inside the "
          f"{LOAD_LIMIT_S:.0f} s limit)")
    for what in ("filter", "search"):
        took = report[f"{what}_s"]
        print(f"{what}: {took} s ({FILTER_LIMIT_S / max(took, 1e-9):.1f}x inside the {FILTER_LIMIT_S:.0f} s limit)")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
