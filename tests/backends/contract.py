"""The backend protocol's behaviour, as tests any in-process backend must pass on the embedded model.

A backend's test module imports these functions (pytest then collects them there) and defines a
module-scoped ``backend`` fixture: the backend, loaded, on the embedded SmolLM2-135M-Instruct, with
room for prompts of up to 4,096 tokens (so the 9,000-word request below is too long for it).
tests/backends/test_llamacpp_backend.py and test_vllm_backend.py run them.
"""

import json

from seapo.backends import GenerationRequest


def chat(text, **kw):
    return GenerationRequest(messages=[{"role": "user", "content": text}], **{"max_new_tokens": 24, **kw})


def test_length_and_eos(backend):
    cut = backend.generate([chat("Tell me a long story about a dragon.", max_new_tokens=5)])[0]
    assert cut.finish_reason == "length" and cut.num_tokens == 5
    done = backend.generate([chat("What is the capital of France? One word.", max_new_tokens=60)])[0]
    assert done.finish_reason == "stop" and done.num_tokens < 60 and "<|im_end|>" not in done.text


def test_stop_sequences_cut_the_text(backend):
    free = backend.generate([GenerationRequest(prompt="Q: 1+1?\nA:", max_new_tokens=12)])[0]
    stop = free.text.strip()[1:3]
    assert stop
    cut = backend.generate([GenerationRequest(prompt="Q: 1+1?\nA:", max_new_tokens=12, stop=(stop,))])[0]
    assert cut.finish_reason == "stop" and stop not in cut.text and free.text.startswith(cut.text)
    assert cut.num_tokens < free.num_tokens  # decoding stopped there, not only the text


def test_n_samples_are_seeded_and_distinct(backend):
    req = GenerationRequest(prompt="Once upon a time", max_new_tokens=16, temperature=1.0, n=4, seed=3)
    first = backend.generate([req])[0]
    assert len(first.completions) == 4 and len({c.text for c in first.completions}) > 1
    again = backend.generate([req])[0]  # seeded: the same request gives the same samples
    assert [c.text for c in again.completions] == [c.text for c in first.completions]
    other = backend.generate([GenerationRequest(prompt="Once upon a time", max_new_tokens=16, temperature=1.0, n=4,
                                                seed=4)])[0]
    assert [c.text for c in other.completions] != [c.text for c in first.completions]


def test_logprobs_are_the_greedy_tokens_log_probabilities(backend):
    g = backend.generate([GenerationRequest(prompt="Q: 2+2?\nA:", max_new_tokens=8, logprobs=True)])[0]
    lps = g.completions[0].token_logprobs
    assert len(lps) == g.num_tokens and all(-20 < lp <= 0 for lp in lps)
    # greedy picks the arg-max, whose probability is at least 1/vocab and, in practice, far more
    assert sum(lps) / len(lps) > -3
    assert backend.generate([GenerationRequest(prompt="Q: 2+2?\nA:", max_new_tokens=8)])[0].completions[
        0].token_logprobs is None


def test_json_schema_output_follows_the_schema(backend):
    assert backend.supports_json_schema
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"]}
    g = backend.generate([chat("Describe a person as JSON.", max_new_tokens=60, json_schema=json.dumps(schema))])[0]
    value = json.loads(g.text)
    assert set(value) == {"name", "age"} and isinstance(value["name"], str) and isinstance(value["age"], int)


def test_a_bad_request_fails_alone(backend):
    too_long = GenerationRequest(prompt="word " * 9000, max_new_tokens=6)  # beyond the backend's positions
    bad_schema = chat("x", json_schema="{not json")
    out = backend.generate([chat("a", max_new_tokens=4), too_long, bad_schema, chat("b", max_new_tokens=4)])
    assert out[0].ok and out[3].ok and out[0].num_tokens > 0
    assert not out[1].ok and out[1].finish_reason == "error" and "positions" in out[1].error
    assert not out[2].ok


def test_progress_reports_every_request(backend):
    seen = []
    backend.generate([chat("a", max_new_tokens=3)] * 5 + [GenerationRequest(prompt="x " * 9000)],
                     progress=seen.append)
    assert sum(seen) == 6
