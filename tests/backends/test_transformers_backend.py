from seapo.backends import GenerationConfig, available_backends, make_backend


def test_registry_lists_transformers():
    assert "transformers" in available_backends()


def test_batched_left_padded_generation_matches_one_at_a_time(tiny_model):
    backend = make_backend("transformers", model=str(tiny_model), batch_size=4, dtype="fp32")
    conversations = [[{"role": "user", "content": "hi " * n}] for n in (1, 7, 3, 12, 5)]
    config = GenerationConfig(max_new_tokens=6)
    batched = backend.generate(conversations, config)
    backend.config.batch_size = 1
    single = backend.generate(conversations, config)
    assert [g.text for g in batched] == [g.text for g in single]  # padding changes nothing, order kept
    assert all(g.finish_reason in ("stop", "length") and g.num_tokens <= 6 for g in batched)
    assert any(g.finish_reason == "length" for g in batched)  # a random model rarely stops by itself


def test_progress_reports_every_item(tiny_model):
    backend = make_backend("transformers", model=str(tiny_model), batch_size=2, dtype="fp32")
    seen = []
    backend.generate([[{"role": "user", "content": "a"}]] * 5, GenerationConfig(max_new_tokens=2),
                     progress=seen.append)
    assert sum(seen) == 5


def test_embedded_model_answers_and_stops(embedded_model):
    backend = make_backend("transformers", model="embedded", batch_size=2)
    out = backend.generate([[{"role": "user", "content": "What is the capital of France?"}]],
                           GenerationConfig(max_new_tokens=40))
    assert "Paris" in out[0].text
    assert out[0].finish_reason == "stop" and "<|im_end|>" not in out[0].text
