"""The extension examples in docs/architecture.md run as written and plug into a real injection run."""

import json
import re
from pathlib import Path

from seapo.backends import GenerationRequest, make_backend
from seapo.inject.pipeline import InjectConfig, inject
from tests.inject.helpers import gsm8k_records

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def test_the_three_extension_examples_work(shared_data, tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 3
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {})
    assert make_backend({"name": "echo", "suffix": "?"}).generate([GenerationRequest(prompt="hi")])[0].text == "hi?"
    records = gsm8k_records(shared_data, 5)
    # An off-by-one is not a logic error: the default judge finds no logic error in it and keeps none.
    judged = inject(records, tmp_path / "judged", InjectConfig(injector="off-by-one", strategy="logic-first",
                                                               fallback="none"))
    assert judged.summary["pairs"] == 0
    assert judged.summary["per_type"]["logic"]["judge_rejected"] > 0
    config = InjectConfig(injector="off-by-one", strategy="logic-first", fallback="none", judge={"name": "none"})
    result = inject(records, tmp_path, config)
    pairs = [json.loads(line) for line in result.pairs_path.read_text().splitlines()]
    assert len(pairs) == 5 and {p["error_type"] for p in pairs} == {"logic"}
    for p in pairs:
        assert p["injector"] == "off-by-one" and p["rejected"]["content"] != p["chosen"]["content"]
