"""The transformers backend behind the backend protocol: lifecycle, batching, requests, errors."""

import pytest

from seapo.backends import GenerationRequest, available_backends, make_backend


def chat(text):
    return GenerationRequest(messages=[{"role": "user", "content": text}], max_new_tokens=6)


def test_registry_lists_transformers():
    assert "transformers" in available_backends()


def test_construction_is_cheap_and_fingerprint_needs_no_model(tiny_model):
    backend = make_backend(model=str(tiny_model), dtype="fp32")
    assert not backend.loaded
    key = backend.fingerprint()
    assert not backend.loaded  # a driver can key a resume store without loading the model
    assert key == make_backend(model=str(tiny_model), dtype="fp32", batch_size=3).fingerprint()  # speed only
    assert key != make_backend(model=str(tiny_model), dtype="bf16").fingerprint()
    with backend:
        assert backend.loaded
    assert not backend.loaded


def test_batched_left_padded_generation_matches_one_at_a_time(tiny_model):
    backend = make_backend(model=str(tiny_model), batch_size=4, dtype="fp32")
    requests = [chat("hi " * n) for n in (1, 7, 3, 12, 5)]
    batched = backend.generate(requests)
    single = make_backend(model=str(tiny_model), batch_size=1, dtype="fp32").generate(requests)
    assert [g.text for g in batched] == [g.text for g in single]  # padding changes nothing, order kept
    assert all(g.ok and g.finish_reason in ("stop", "length") and g.num_tokens <= 6 for g in batched)
    assert any(g.finish_reason == "length" for g in batched)  # a random model rarely stops by itself


def test_raw_text_n_samples_stop_sequences_and_logprobs(tiny_model):
    backend = make_backend(model=str(tiny_model), batch_size=4, dtype="fp32")
    greedy, sampled = backend.generate([
        GenerationRequest(prompt="Q: 1+1?\nA:", max_new_tokens=8, logprobs=True),
        GenerationRequest(prompt="Q: 2+2?\nA:", max_new_tokens=8, temperature=1.0, n=3, seed=1),
    ])
    assert len(greedy.completions) == 1 and len(sampled.completions) == 3
    first = greedy.completions[0]
    assert len(first.token_logprobs) == first.num_tokens and all(lp <= 0 for lp in first.token_logprobs)
    # the greedy token is the most likely one, so its log-prob is the best on offer: close to 0 or not,
    # it must equal a re-scoring of the same text
    again = backend.generate([GenerationRequest(prompt="Q: 1+1?\nA:", max_new_tokens=8, logprobs=True)])[0]
    assert again.completions[0].token_logprobs == pytest.approx(first.token_logprobs, abs=1e-4)


def test_stop_sequences_cut_the_text(embedded_model):
    backend = make_backend(model="embedded", batch_size=2)
    free = backend.generate([GenerationRequest(prompt="Q: 1+1?\nA:", max_new_tokens=8)])[0].text
    stop = free.strip()[1:3]
    cut = backend.generate([GenerationRequest(prompt="Q: 1+1?\nA:", max_new_tokens=8, stop=(stop,))])[0]
    assert cut.finish_reason == "stop" and stop not in cut.text and free.startswith(cut.text)


def test_one_bad_request_does_not_sink_the_batch(tiny_model):
    backend = make_backend(model=str(tiny_model), batch_size=4, dtype="fp32")
    too_long = GenerationRequest(prompt="word " * 3000, max_new_tokens=6)  # beyond the model's 2048 positions
    out = backend.generate([chat("a"), too_long, chat("b")])
    assert out[0].ok and out[2].ok
    assert not out[1].ok and out[1].finish_reason == "error" and "positions" in out[1].error


def test_progress_reports_every_item(tiny_model):
    backend = make_backend(model=str(tiny_model), batch_size=2, dtype="fp32")
    seen = []
    backend.generate([chat("a")] * 5, progress=seen.append)
    assert sum(seen) == 5


def test_embedded_model_answers_and_stops(embedded_model):
    backend = make_backend(model="embedded", batch_size=2)
    out = backend.generate([GenerationRequest(messages=[{"role": "user", "content": "What is the capital of France?"}],
                                              max_new_tokens=40)])
    assert "Paris" in out[0].text
    assert out[0].finish_reason == "stop" and "<|im_end|>" not in out[0].text


def test_async_generation_gives_the_same_answers(tiny_model):
    import asyncio

    backend = make_backend(model=str(tiny_model), batch_size=2, dtype="fp32")
    requests = [chat("a"), chat("b c")]
    assert [g.text for g in asyncio.run(backend.agenerate(requests))] == [g.text for g in backend.generate(requests)]
