"""The LLM injector with real models: a tiny random one for mechanics, the embedded one end to end."""

import json
import re

from seapo.inject.error_types import ErrorType
from seapo.inject.llm import LLMInjector, LLMInjectorConfig
from seapo.inject.pipeline import InjectConfig, inject
from tests.inject.helpers import gsm8k_records, tiny_llm


def test_injections_carry_raw_output_and_truncation(tiny_model, shared_data):
    records = gsm8k_records(shared_data, 3)
    injector = LLMInjector(tiny_llm(tiny_model, max_new_tokens=5))
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


def _words(text):
    return re.findall(r"\w+", text.lower())


def test_embedded_model_end_to_end(tmp_path, shared_data):
    """The paper's injector on the embedded model. Every one of the 9 items is checked on its own
    terms, independently of the verifier's code: an accepted negative really differs in its words
    from the positive and is the cleaned model output; a rejected one carries its attempts and a
    reason that the text confirms."""
    records = gsm8k_records(shared_data, 3)
    config = InjectConfig(strategy="all", fallback="none", max_attempts=1,
                          llm=LLMInjectorConfig(backend={"model": "embedded", "batch_size": 3}, max_new_tokens=96))
    result = inject(records, tmp_path / "run", config)
    by_id = {r.id: r for r in records}
    negatives = [json.loads(line) for line in result.negatives_path.read_text().splitlines()]
    rejected = [json.loads(line) for line in (tmp_path / "run" / "rejected.jsonl").read_text().splitlines()]
    assert len(negatives) + len(rejected) == 3 * 3  # nothing lost
    for row in negatives:
        positive, negative = by_id[row["record_id"]].response, row["rejected"]["content"]
        assert row["injector"] == "llm" and row["details"]["raw"].strip()
        assert negative.strip() and _words(negative) != _words(positive)
        assert negative in row["details"]["raw"] or _words(negative) == _words(row["details"]["raw"])[-len(
            _words(negative)):] or set(_words(negative)) <= set(_words(row["details"]["raw"]))
    for row in rejected:
        (attempt,) = row["attempts"]
        assert row["reason"] == attempt["reason"] and not attempt["passed"]
        text = attempt["text"] or ""
        positive = by_id[row["record_id"]].response
        if row["reason"] == "unchanged":
            assert _words(text) == _words(positive)
        elif row["reason"] == "empty":
            assert not text.strip()
    for counts in result.summary["per_type"].values():
        assert counts["attempted"] == 3
        assert counts["accepted"] + counts["fallen_back"] + counts["rejected"] == 3
