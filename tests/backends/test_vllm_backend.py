"""The vllm backend on a real vLLM engine and a CUDA GPU: the shared backend tests (tests/backends/contract.py)
on the embedded model, plus vLLM's own settings. Skipped, saying which is missing, without vLLM or a GPU;
what runs without them is in test_vllm_config.py."""

import pytest

from seapo.backends import make_backend
from seapo.backends.base import common_prefix
from tests.backends.contract import (  # noqa: F401 - collected here, on this module's backend
    chat,
    test_a_bad_request_fails_alone,
    test_json_schema_output_follows_the_schema,
    test_length_and_eos,
    test_logprobs_are_the_greedy_tokens_log_probabilities,
    test_n_samples_are_seeded_and_distinct,
    test_progress_reports_every_request,
    test_stop_sequences_cut_the_text,
)

pytest.importorskip("vllm", reason="vLLM is not installed (pip install 'seapo[vllm]' on a CUDA machine)")
torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("vLLM is installed but no CUDA GPU is visible (torch.cuda.is_available() is False)",
                allow_module_level=True)

PROMPTS = ["What is the capital of France?", "Write a haiku about the sea.", "What is 12 times 3?",
           "Name three primary colors.", "How do I boil an egg?", "Translate 'good morning' into Spanish."]


@pytest.fixture(scope="module")
def backend():
    # A small share of the GPU and no CUDA graphs: the 135M model starts in seconds beside other tests. bf16
    # (vLLM's usual attention kernels do not run fp32), so batching and the kernels may flip late near-ties.
    b = make_backend(name="vllm", model="embedded", batch_size=8, max_model_len=4096, gpu_memory_utilization=0.3,
                     enforce_eager=True, dtype="bf16")
    with b:
        yield b


def test_greedy_repeats_and_barely_depends_on_batching(backend):
    requests = [chat(p) for p in PROMPTS]
    batched = backend.generate(requests)
    assert all(g.ok and g.num_tokens > 0 for g in batched)
    assert [g.text for g in backend.generate(requests)] == [g.text for g in batched]
    single = [backend.generate([r])[0] for r in requests]
    agree = [common_prefix(backend.tokenizer(a.text)["input_ids"], backend.tokenizer(b.text)["input_ids"])
             for a, b in zip(batched, single, strict=True)]
    assert min(agree) >= 4 and sum(a.text == b.text for a, b in zip(batched, single, strict=True)) >= 3, agree


def test_greedy_n_copies_one_completion(backend):
    g = backend.generate([chat(PROMPTS[0], n=3)])[0]
    assert len(g.completions) == 3 and len({c.text for c in g.completions}) == 1


def test_chat_prompts_are_the_transformers_backends_tokens(backend):
    hf = make_backend(name="transformers", model="embedded", dtype="fp32")
    for text in PROMPTS[:3]:
        assert backend.encode(chat(text)) == hf.encode(chat(text))


def test_greedy_agrees_with_the_transformers_backend(backend):
    """The same weights, vLLM bf16 against transformers fp32: most greedy answers share their first tokens
    (near-ties part them, as with llamacpp)."""
    hf = make_backend(name="transformers", model="embedded", dtype="fp32", batch_size=6)
    requests = [chat(p, max_new_tokens=8) for p in PROMPTS]
    ours = [backend.tokenizer(g.text, add_special_tokens=False)["input_ids"] for g in backend.generate(requests)]
    theirs = [hf.tokenizer(g.text, add_special_tokens=False)["input_ids"] for g in hf.generate(requests)]
    prefix = [common_prefix(x, y) for x, y in zip(ours, theirs, strict=True)]
    assert sum(p >= 4 for p in prefix) >= len(PROMPTS) // 2, prefix


def test_the_llm_judge_gets_a_parsable_verdict_for_every_item(backend):
    """The judge asks for JSON-schema decoding on backends that support it; on vLLM every verdict then parses,
    even from a 135M model that rarely writes valid JSON unconstrained."""
    from seapo.judge.base import JudgeItem
    from seapo.judge.llm import LLMJudge, LLMJudgeConfig

    judge = LLMJudge(LLMJudgeConfig(backend={"name": "vllm"}, retries=0), backend=backend)
    assert judge.constrained
    items = [JudgeItem("What is 2 + 3?", "2 + 3 = 6. The answer is 6.", reference="2 + 3 = 5. The answer is 5."),
             JudgeItem("Capital of France?", "Paris.", reference="Paris."),
             JudgeItem("Who wrote Hamlet?", "Charles Dickens wrote Hamlet.", reference="Shakespeare wrote Hamlet.")]
    verdicts = judge.judge(items)
    assert [v.details["parsed"] for v in verdicts] == [True, True, True]
    assert all(v.details["constrained"] for v in verdicts)
