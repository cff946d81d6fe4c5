"""The LLM injector with real models: a tiny random one for mechanics, the embedded one end to end."""

import json

from seapo.inject.error_types import ErrorType
from seapo.inject.llm import LLMInjector, LLMInjectorConfig
from seapo.inject.pipeline import InjectConfig, inject
from seapo.inject.verify import Verifier
from tests.inject.helpers import gsm8k_records


def test_injections_carry_raw_output_and_truncation(tiny_model, shared_data):
    records = gsm8k_records(shared_data, 3)
    injector = LLMInjector(LLMInjectorConfig(model=str(tiny_model), max_new_tokens=5, dtype="fp32"))
    first = injector.inject(records, ErrorType.LOGIC)
    assert len(first) == 3 and all(i.injector == "llm" and i.error_type is ErrorType.LOGIC for i in first)
    for injection in first:
        assert injection.details["finish_reason"] in ("stop", "length")
        assert injection.truncated == (injection.details["finish_reason"] == "length")
        assert injection.details["temperature"] == 0.0
    again = injector.inject(records, ErrorType.LOGIC)
    assert [i.text for i in again] == [i.text for i in first]  # greedy: repeatable
    retry = injector.inject(records, ErrorType.LOGIC, attempt=1)
    assert all(i.details["temperature"] == 0.7 for i in retry)  # retries sample instead


def test_embedded_model_end_to_end(tmp_path, shared_data):
    """The paper's injector on the embedded model; the verifier decides what is usable."""
    records = gsm8k_records(shared_data, 3)
    config = InjectConfig(strategy="all", fallback="none", max_attempts=1,
                          llm=LLMInjectorConfig(model="embedded", max_new_tokens=96, batch_size=3))
    result = inject(records, tmp_path / "run", config)
    summary = result.summary
    verifier = Verifier()
    by_id = {r.id: r for r in records}
    negatives = [json.loads(line) for line in result.negatives_path.read_text().splitlines()]
    for row in negatives:  # every accepted negative really passes an independent check
        check = verifier.check(by_id[row["record_id"]].response, row["rejected"]["content"])
        assert check.passed, row
        assert row["injector"] == "llm" and row["details"]["raw"]
    rejected = [json.loads(line) for line in (tmp_path / "run" / "rejected.jsonl").read_text().splitlines()]
    assert all(r["reason"] for r in rejected)
    assert len(negatives) + len(rejected) == 3 * 3  # nothing lost
    for counts in summary["per_type"].values():
        assert counts["attempted"] == 3
        assert counts["accepted"] + counts["fallen_back"] + counts["rejected"] == 3
