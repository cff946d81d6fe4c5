"""A backend that fails on some items: the pipeline retries or records them; a chunk is never lost."""

import json
import re

from seapo.backends import BackendConfig, Generation, GenerationBackend, register_backend
from seapo.backends.base import Completion
from seapo.inject.llm import LLMInjectorConfig
from seapo.inject.pipeline import InjectConfig, inject
from tests.inject.helpers import gsm8k_records

_ORIGINAL = re.compile(r"Original response:\n(.*)\n\nKeep the language", re.S)


def _flaky(response: str) -> bool:
    return len(response.strip()) % 3 == 0


class FlakyConfig(BackendConfig):
    name: str = "test-flaky"


@register_backend("test-flaky")
class FlakyBackend(GenerationBackend):
    """Rewrites the response by swapping its first number; fails every first try on the records
    whose response length is a multiple of 3."""

    config_class = FlakyConfig

    def _load(self) -> None:
        pass

    def _generate(self, requests, progress):
        out = []
        for request in requests:
            response = _ORIGINAL.search(request.messages[-1]["content"]).group(1)
            if request.seed == 0 and _flaky(response):
                out.append(Generation.failed("server said 503"))
            else:
                out.append(Generation([Completion(re.sub(r"\d+", "999", response, count=1), "stop", 10)]))
        return out


def test_failed_items_are_retried_and_the_rest_of_the_chunk_is_kept(shared_data, tmp_path):
    records = gsm8k_records(shared_data, 12)
    flaky = [r.id for r in records if _flaky(r.response)]
    assert 0 < len(flaky) < len(records)
    llm = LLMInjectorConfig(backend={"name": "test-flaky"})
    result = inject(records, tmp_path / "retry", InjectConfig(strategy="single", error_types=["correctness"],
                                                              llm=llm, fallback="none", max_attempts=2,
                                                              judge={"name": "none"}))
    pairs = {p["record_id"]: p for p in map(json.loads, result.pairs_path.read_text().splitlines())}
    assert set(pairs) == {r.id for r in records}  # every item made it, the flaky ones on their retry
    for rid in flaky:
        assert pairs[rid]["attempts"] == 2
    assert result.summary["per_type"]["correctness"]["failed_attempt_reasons"] == {"backend_error": len(flaky)}

    once = inject(records, tmp_path / "once", InjectConfig(strategy="single", error_types=["correctness"], llm=llm,
                                                           fallback="none", max_attempts=1, judge={"name": "none"}))
    rejected = [json.loads(x) for x in (tmp_path / "once" / "rejected.jsonl").read_text().splitlines()]
    assert sorted(r["record_id"] for r in rejected) == sorted(flaky)
    assert all(r["reason"] == "backend_error" and r["attempts"][0]["error"] == "server said 503" for r in rejected)
    assert once.summary["pairs"] == len(records) - len(flaky)
