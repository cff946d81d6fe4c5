"""The transformers backend's own greedy loop against ``model.generate``, and the KV cache under it.

The loop (preallocated cache, prompts prefilled one at a time with shared prefixes reused, ended rows
replaced in place by the next prompts) must pick the tokens ``model.generate`` picks. In fp32 that is exact here.
"""

import pytest

from seapo.backends import GenerationRequest, make_backend
from seapo.backends.transformers_backend import cut_at_stop

FEW_SHOT = ("Answer with a number.\n\nQ: What is 2 + 3?\nA: 5\n\nQ: What is 7 - 4?\nA: 3\n\n"
            "Q: What is 6 + 1?\nA: 7\n\n")


def hf_generate(backend, request):
    """What the backend returned before its own loop: ``model.generate`` on the left-padded batch."""
    import torch

    rows = [backend.encode(request)]
    ids, mask, width = backend._left_padded(rows)
    with torch.inference_mode():
        out = backend.model.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=request.max_new_tokens, do_sample=False,
            temperature=None, top_p=None, top_k=None, eos_token_id=backend._eos,
            pad_token_id=backend.tokenizer.pad_token_id, stop_strings=list(request.stop) or None,
            tokenizer=backend.tokenizer if request.stop else None)
    new = out[0, width:].tolist()
    ended = next((k for k, t in enumerate(new) if t in backend._eos), None)
    tokens = new if ended is None else new[:ended]
    return cut_at_stop(backend.tokenizer.decode(tokens, skip_special_tokens=True), request.stop)[0]


def requests_with_shared_prefixes():
    questions = ["What is 4 + 4?", "What is 9 - 2?", "What is 3 + 3?", "Name a colour.", "What is 10 - 1?"]
    out = [GenerationRequest(prompt=f"{FEW_SHOT}Q: {q}\nA:", max_new_tokens=24, stop=("\n\n",)) for q in questions]
    out.append(GenerationRequest(prompt="Once upon a time", max_new_tokens=30))  # no stop: runs to the limit
    out.append(GenerationRequest(messages=[{"role": "user", "content": "Say hi."}], max_new_tokens=30))  # ends by EOS
    return out


@pytest.mark.parametrize("batch_size", [2, 3, 16])  # 2, 3: rows leave and the next prompts join mid-run
def test_greedy_loop_picks_the_tokens_model_generate_picks(embedded_model, batch_size):
    backend = make_backend(model="embedded", dtype="fp32", batch_size=batch_size)
    requests = requests_with_shared_prefixes()
    ours = backend.generate(requests)
    theirs = [hf_generate(backend, r) for r in requests]
    assert [g.text for g in ours] == theirs
    reasons = [g.finish_reason for g in ours]
    assert "length" in reasons and "stop" in reasons  # the requests cover both ways of ending
    assert ours[-1].finish_reason == "stop" and ours[-1].num_tokens < 30  # EOS
    assert ours[-2].finish_reason == "length" and ours[-2].num_tokens == 30


def test_shared_prefix_prefill_equals_a_full_prefill(embedded_model):
    """Prompts prefilled on the previous prompt's keys and values, into rows of one cache, give the logits
    and keys of a prompt run whole."""
    import torch

    from seapo.backends.kv_cache import kv_cache_for

    backend = make_backend(model="embedded", dtype="fp32", batch_size=4)
    backend.load()
    prompts = [backend.encode(GenerationRequest(prompt=f"{FEW_SHOT}Q: {q}\nA:")) for q in ("Why?", "What is 1 + 1?")]
    prompts.append(backend.encode(GenerationRequest(prompt="Unrelated text")))
    width = max(map(len, prompts))
    cache = kv_cache_for(backend.model, width + 4, batch=4)
    rows = [3, 0, 1]  # any free rows of the cache
    with torch.inference_mode():
        first, _ = backend._prefill_into(cache, prompts, rows, width, in_use=4)
    for r, ids in enumerate(prompts):
        whole = backend.model(input_ids=torch.tensor([ids]), cache=kv_cache_for(backend.model, len(ids)))
        assert torch.allclose(first[r], whole.logits[0, -1].float(), atol=1e-4)
        # the row's keys sit at the right end of its row, padding on the left
        own = kv_cache_for(backend.model, len(ids))
        backend.model(input_ids=torch.tensor([ids]), cache=own)
        assert torch.allclose(cache.layers[0].keys[rows[r], :, width - len(ids):], own.layers[0].keys[0], atol=1e-4)


def test_rows_leave_and_padding_goes_in_place():
    """The loop's cache operations move rows and columns inside the one buffer: nothing is reallocated."""
    import torch

    from seapo.backends.kv_cache import PreallocatedLayer

    layer = PreallocatedLayer(capacity=10, batch=4)
    keys, values = torch.randn(4, 2, 6, 3), torch.randn(4, 2, 6, 3)
    layer.update(keys, values)
    buffers = layer._keys.data_ptr(), layer._values.data_ptr()
    layer.keep_rows_in_place([1, 3])
    assert torch.equal(layer.keys, keys[[1, 3]]) and torch.equal(layer.values, values[[1, 3]])
    layer.shift_left(2)
    assert torch.equal(layer.keys, keys[[1, 3], :, 2:]) and layer.get_seq_length() == 4
    step = torch.randn(2, 2, 1, 3)
    out, _ = layer.update(step, step)  # decoding continues on the rows in use
    assert out.shape == (2, 2, 5, 3) and torch.equal(out[:, :, -1:], step)
    layer.use_rows(3)  # a third row joins the free slot
    assert layer.keys.shape[0] == 3
    assert (layer._keys.data_ptr(), layer._values.data_ptr()) == buffers


def test_logprobs_and_batch_invariance_in_fp32(tiny_model):
    backend = make_backend(model=str(tiny_model), dtype="fp32", batch_size=4)
    requests = [GenerationRequest(prompt="a " * n, max_new_tokens=10, logprobs=True) for n in (1, 9, 4, 20, 2)]
    batched = backend.generate(requests)
    single = make_backend(model=str(tiny_model), dtype="fp32", batch_size=1).generate(requests)
    assert [g.text for g in batched] == [g.text for g in single]
    for a, b in zip(batched, single, strict=True):
        assert a.completions[0].token_logprobs == pytest.approx(b.completions[0].token_logprobs, abs=1e-4)
        assert len(a.completions[0].token_logprobs) == a.num_tokens


def test_preallocated_layer_grows_selects_rows_and_matches_the_dynamic_cache(tiny_model):
    import torch
    from transformers import AutoModelForCausalLM, DynamicCache

    from seapo.backends.kv_cache import PreallocatedLayer, kv_cache_for

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    ids = torch.randint(10, 1000, (3, 7))
    ours, theirs = kv_cache_for(model, capacity=8, batch=3), DynamicCache(config=model.config)  # 8 < 7 + 5
    assert all(isinstance(layer, PreallocatedLayer) for layer in ours.layers)
    with torch.inference_mode():
        a, b = model(input_ids=ids, cache=ours), model(input_ids=ids, cache=theirs)
        for _ in range(5):  # past the capacity: the buffer doubles
            token = a.logits[:, -1:].argmax(-1)
            assert torch.equal(token, b.logits[:, -1:].argmax(-1))
            a, b = model(input_ids=token, cache=ours), model(input_ids=token, cache=theirs)
            assert torch.allclose(a.logits, b.logits, atol=1e-5)
    assert ours.get_seq_length() == 12 and ours.layers[0].capacity == 16
    keep = torch.tensor([2, 0])
    ours.batch_select_indices(keep)
    theirs.batch_select_indices(keep)
    assert torch.equal(ours.layers[1].keys, theirs.layers[1].keys)
    with torch.inference_mode():
        token = torch.tensor([[5], [6]])
        assert torch.allclose(model(input_ids=token, cache=ours).logits, model(input_ids=token, cache=theirs).logits,
                              atol=1e-5)


def test_greedy_requests_outside_the_loop_stay_greedy(tiny_model):
    """n > 1 at temperature 0 goes through model.generate: every completion is the greedy one."""
    backend = make_backend(model=str(tiny_model), dtype="fp32", batch_size=4)
    one = backend.generate([GenerationRequest(prompt="a b c", max_new_tokens=8)])[0].text
    many = backend.generate([GenerationRequest(prompt="a b c", max_new_tokens=8, n=3)])[0]
    assert [c.text for c in many.completions] == [one] * 3


@pytest.mark.parametrize("n", [1, 2])  # 1: seapo's greedy loop; 2: model.generate (several samples)
def test_generation_runs_without_cudnn_attention_and_restores_it(embedded_model, n):
    """On a GPU cuDNN's attention builds a graph per mask shape, 1.3 ms of host time a call (docs/gpu.md)."""
    import torch

    backend = make_backend(model="embedded", dtype="fp32", batch_size=2)
    seen = []
    with backend:
        hook = backend.model.register_forward_pre_hook(lambda *_: seen.append(torch.backends.cuda.cudnn_sdp_enabled()))
        request = GenerationRequest(prompt="Once upon a time", max_new_tokens=3, n=n,
                                    temperature=0.0 if n == 1 else 1.0)
        assert backend.generate([request])[0].ok
        hook.remove()
    assert seen and not any(seen)
    assert torch.backends.cuda.cudnn_sdp_enabled()
