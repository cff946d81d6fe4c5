"""The openai backend against a real llama.cpp server on loopback (llama-cpp-python[server], the
embedded GGUF file), and a fault-injecting proxy in front of that server. No mock of the server.

llama-cpp-python's server answers any model name with its one model, so the wrong-model path is
tested through the proxy answering OpenAI's 404 ``model_not_found``; it also ignores ``n``, so
``n > 1`` exercises the backend's top-up calls.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seapo.backends import GenerationRequest, make_backend
from seapo.backends.openai_backend import BudgetExceeded, OpenAIBackend, retry_after_seconds
from seapo.errors import InputError
from tests.backends.openai_server import SERVED_NAME, FaultProxy, LlamaServer, free_port, llama_cpp_available

pytestmark = pytest.mark.skipif(not llama_cpp_available(),
                                reason="llama_cpp (pip install 'llama-cpp-python[server]') is not importable; "
                                       "scripts/setup.sh installs it")
pytest.importorskip("openai", reason="the openai package is not installed (pip install 'seapo[openai]')")

REPO = Path(__file__).resolve().parents[2]
SECRET = "sk-seapo-test-0123456789abcdefSECRET"


@pytest.fixture(scope="module")
def gguf() -> Path:
    from seapo.models.resolve import embedded_gguf_path

    return embedded_gguf_path()


@pytest.fixture(scope="module")
def server(gguf, tmp_path_factory):
    srv = LlamaServer(gguf, log=tmp_path_factory.mktemp("llama") / "server.log").start()
    yield srv
    srv.stop()


def backend(base_url: str, **fields):
    return make_backend({"name": "openai", "model": SERVED_NAME, "base_url": base_url, **fields})


CHAT = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


def test_greedy_chat_and_text_requests(server):
    b = backend(server.base_url, max_in_flight=2)
    with b:
        out = b.generate([GenerationRequest(messages=CHAT, max_new_tokens=16),
                          GenerationRequest(prompt="The capital of France is", max_new_tokens=8),
                          GenerationRequest(messages=CHAT, max_new_tokens=16)])
    assert all(g.ok for g in out), [g.error for g in out]
    assert out[0].text.strip() and out[1].text.strip()
    assert out[0].text == out[2].text  # greedy repeats itself
    assert out[1].finish_reason == "length" and out[1].num_tokens == 8
    assert all(g.num_tokens > 0 for g in out)
    assert b.usage["prompt_tokens"] > 0 and b.usage["completion_tokens"] >= 8 and b.usage["requests"] == 3


def test_n_stop_logprobs_and_progress(server):
    b = backend(server.base_url)
    free = b.generate([GenerationRequest(prompt="Count: 1, 2, 3,", max_new_tokens=12)])[0].text
    words = free.split()
    assert len(words) >= 3, free
    stop = " " + words[2]  # a stop sequence the greedy continuation is known to reach
    done = []
    out = b.generate([GenerationRequest(prompt="Count: 1, 2, 3,", max_new_tokens=12, stop=(stop,)),
                      GenerationRequest(messages=CHAT, max_new_tokens=8, n=3, temperature=0.8, seed=1),
                      GenerationRequest(prompt="Hello", max_new_tokens=4, logprobs=True)], progress=done.append)
    assert sum(done) == 3
    counted = out[0]
    assert counted.ok and counted.finish_reason == "stop" and counted.text == free[:free.index(stop)], counted.text
    assert len(out[1].completions) == 3 and all(c.text for c in out[1].completions)
    lp = out[2].completions[0].token_logprobs
    assert lp is not None and len(lp) == out[2].num_tokens and all(x <= 0 for x in lp)


PERSON = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}


def test_json_schema_decoding_in_the_servers_dialect(server):
    """llama-cpp-python's server constrains with {type: json_object, schema}; it refuses OpenAI's json_schema
    form (a validation error it answers as HTTP 500), and that refusal fails the request rather than returning
    unconstrained text."""
    ask = GenerationRequest(messages=[{"role": "user", "content": "Describe a person as JSON."}], max_new_tokens=60,
                            json_schema=json.dumps(PERSON))
    with FaultProxy(server.port) as proxy:
        b = backend(proxy.base_url, json_schema_mode="json_object")
        assert b.supports_json_schema
        good, bad, raw = b.generate([ask, GenerationRequest(messages=CHAT, max_new_tokens=8, json_schema="{not json"),
                                     GenerationRequest(prompt="A person:", max_new_tokens=8,
                                                       json_schema=json.dumps(PERSON))])
    assert good.ok, good.error
    value = json.loads(good.text)
    assert set(value) == {"name", "age"} and isinstance(value["name"], str) and isinstance(value["age"], int)
    assert not bad.ok and "bad JSON schema" in bad.error
    assert not raw.ok and "needs a chat request" in raw.error  # never sent unconstrained
    assert [body["response_format"] for body in proxy.bodies] == [{"type": "json_object", "schema": PERSON}]
    openai_form = backend(server.base_url, json_schema_mode="json_schema", max_retries=0).generate([ask])[0]
    assert not openai_form.ok and "HTTP 500" in openai_form.error and "response_format" in openai_form.error
    off = backend(server.base_url)  # the default: the server is not asked, so the backend refuses such requests
    assert not off.supports_json_schema
    refused = off.generate([ask])[0]
    assert not refused.ok and "does not support constrained" in refused.error


@pytest.mark.slow  # a 160-token verdict from the server: 38 s at load 7
def test_the_llm_judge_gets_a_parsed_verdict_through_the_server(server):
    from seapo.judge.base import JudgeItem
    from seapo.judge.llm import LLMJudge, LLMJudgeConfig

    config = LLMJudgeConfig(backend={"name": "openai", "model": SERVED_NAME, "base_url": server.base_url,
                                     "json_schema_mode": "json_object"}, retries=0)
    judge = LLMJudge(config)
    assert judge.constrained
    verdict = judge.judge([JudgeItem("What is 2 + 3?", "2 + 3 = 6. The answer is 6.",
                                     reference="2 + 3 = 5. The answer is 5.")])[0]
    assert verdict.details["parsed"] and verdict.details["constrained"], verdict


def test_the_token_limit_goes_in_the_configured_field(server):
    chat = GenerationRequest(messages=CHAT, max_new_tokens=5)
    text = GenerationRequest(prompt="The capital of France is", max_new_tokens=5)
    with FaultProxy(server.port) as proxy:
        default = backend(proxy.base_url, max_in_flight=1).generate([chat])[0]
        backend(proxy.base_url, max_in_flight=1, max_tokens_param="max_completion_tokens").generate([chat, text])
    sent = [{k: v for k, v in body.items() if k in ("max_tokens", "max_completion_tokens")} for body in proxy.bodies]
    assert sent == [{"max_tokens": 5}, {"max_completion_tokens": 5}, {"max_tokens": 5}]  # /completions: max_tokens
    assert default.ok and default.num_tokens <= 5
    # speed-only settings: the resume key does not move
    assert backend(server.base_url, max_tokens_param="max_completion_tokens", json_schema_mode="json_schema"
                   ).fingerprint() == backend(server.base_url).fingerprint()


def test_fingerprint_leaves_out_what_only_changes_speed():
    a = backend("http://127.0.0.1:1/v1")
    b = backend("http://127.0.0.1:2/v1", max_in_flight=64, timeout_s=3, max_retries=9, token_budget=10)
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != backend("http://127.0.0.1:1/v1", model="other").fingerprint()


def test_wrong_model_name_lists_the_served_models(server):
    with FaultProxy(server.port, served=SERVED_NAME) as proxy:
        b = backend(proxy.base_url, model="gpt-nope")
        with pytest.raises(InputError) as err:
            b.generate([GenerationRequest(messages=CHAT, max_new_tokens=4)])
    assert "gpt-nope" in str(err.value) and f"it serves: {SERVED_NAME}" in str(err.value)


def test_429_and_503_are_retried_honouring_retry_after(server):
    with FaultProxy(server.port) as proxy:
        proxy.faults = [("status", 429, 1), ("status", 503, None), ("status", 500, None)]
        b = backend(proxy.base_url, max_in_flight=1, max_retries=4, backoff_base_s=0.05, backoff_max_s=0.1)
        out = b.generate([GenerationRequest(messages=CHAT, max_new_tokens=4)])
    assert out[0].ok, out[0].error
    posts = [h for h in proxy.hits if h[1].endswith("/chat/completions")]
    assert [h[2] for h in posts] == ["status", "status", "status", "forward"]
    assert posts[1][0] - posts[0][0] >= 0.95  # Retry-After: 1 was honoured (the backoff alone is 0.05-0.06 s)
    assert posts[2][0] - posts[1][0] < 0.9
    assert b.usage["retries"] == 3


def test_other_4xx_fails_that_request_only(server):
    with FaultProxy(server.port) as proxy:
        proxy.faults = [("status", 400, None)]
        b = backend(proxy.base_url, max_in_flight=1)
        out = b.generate([GenerationRequest(messages=CHAT, max_new_tokens=4),
                          GenerationRequest(messages=CHAT, max_new_tokens=4)])
    assert not out[0].ok and "HTTP 400" in out[0].error and "injected 400" in out[0].error
    assert out[1].ok
    assert len([h for h in proxy.hits if h[1].endswith("/chat/completions")]) == 2  # no retry of a 400


def test_slower_than_the_timeout_is_retried_then_fails_with_the_reason(server):
    with FaultProxy(server.port) as proxy:
        proxy.faults = [("delay", 3.0)] * 3
        b = backend(proxy.base_url, timeout_s=0.5, max_retries=2, backoff_base_s=0.01)
        started = time.monotonic()
        out = b.generate([GenerationRequest(messages=CHAT, max_new_tokens=4)])
    assert not out[0].ok and "timeout_s=0.5" in out[0].error and "after 3 tries" in out[0].error
    assert time.monotonic() - started < 6
    assert out[0].finish_reason == "error"


def test_a_server_that_is_down_fails_requests_with_a_reason():
    b = backend(f"http://127.0.0.1:{free_port()}/v1", max_retries=1, backoff_base_s=0.01)
    out = b.generate([GenerationRequest(prompt="x", max_new_tokens=2)])
    assert not out[0].ok and "cannot reach the server" in out[0].error


def test_token_budget_stops_the_batch(server):
    b = backend(server.base_url, max_in_flight=1, token_budget=5)
    with pytest.raises(BudgetExceeded, match="token budget of 5"):
        b.generate([GenerationRequest(prompt="Hello", max_new_tokens=8) for _ in range(3)])
    assert b.usage["requests"] == 1


def test_the_key_comes_only_from_the_named_variable(monkeypatch):
    monkeypatch.delenv("SEAPO_TEST_NO_SUCH_KEY", raising=False)
    b = backend("http://127.0.0.1:1/v1", api_key_env="SEAPO_TEST_NO_SUCH_KEY")
    with pytest.raises(InputError, match="SEAPO_TEST_NO_SUCH_KEY"):
        b.load()
    assert "api_key" not in OpenAIBackend.config_class.model_fields


def test_retry_after_forms():
    assert retry_after_seconds({"retry-after": "2"}) == 2
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_seconds({}) is None
    import email.utils

    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < retry_after_seconds({"retry-after": later}) <= 31


# ---------------------------------------------------------------------------------- seapo inject
@pytest.fixture(scope="module")
def records(tmp_path_factory) -> Path:
    import seapo

    path = tmp_path_factory.mktemp("records") / "records.jsonl"
    seapo.prepare("demo", out=path)
    return path


def run_inject(records: Path, out: Path, base_url: str, *extra: str, key: str | None = None, limit: int = 2,
               popen: bool = False):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if key is not None:
        env["SEAPO_TEST_API_KEY"] = key
    cmd = [sys.executable, "-m", "seapo.cli", "inject", str(records), "--out", str(out), "--backend", "openai",
           "--model", SERVED_NAME, "--limit", str(limit), "--strategy", "mixed", "--chunk-size", "1",
           "--set", f"llm.backend.base_url={base_url}", "--set", "llm.max_new_tokens=16", "--no-shortcut-audit",
           *(("--set", "llm.backend.api_key_env=SEAPO_TEST_API_KEY") if key is not None else ()), *extra]
    if popen:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_inject_end_to_end_counts_tokens_and_never_writes_the_key(server, records, tmp_path):
    out = tmp_path / "inject"
    with FaultProxy(server.port) as proxy:  # the proxy sees the key as the server would
        done = run_inject(records, out, proxy.base_url, "--max-attempts", "1", key=SECRET)
    assert done.returncode in (0, 1), done.stderr
    summary = json.loads((out / "summary.json").read_text())
    usage = summary["token_usage"]
    planned = {t for t, c in summary["per_type"].items() if c["planned"]}
    assert planned and all(usage[t]["prompt_tokens"] > 0 and usage[t]["completion_tokens"] > 0 for t in planned)
    assert summary["pairs"] + summary["rejected_items"] == 2
    for text in [done.stdout, done.stderr]:
        assert SECRET not in text
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert any(h[1].endswith("/chat/completions") for h in proxy.hits)


@pytest.mark.slow
def test_server_killed_mid_run_then_restarted_resumes_with_nothing_lost(gguf, records, tmp_path):
    srv = LlamaServer(gguf, log=tmp_path / "server.log").start()
    try:
        calm = run_inject(records, tmp_path / "calm", srv.base_url, limit=6)
        assert calm.returncode in (0, 1), calm.stderr
        out = tmp_path / "killed"
        proc = run_inject(records, out, srv.base_url, "--set", "llm.backend.max_retries=0", limit=6, popen=True)
        store = out / "injections.sqlite"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if store.exists():
                try:
                    with sqlite3.connect(store) as db:
                        if db.execute("SELECT count(*) FROM items").fetchone()[0] >= 2:
                            break
                except sqlite3.Error:
                    pass
            time.sleep(0.2)
        proc.kill()  # the run dies mid-chunk (a crash, not a clean stop) ...
        srv.kill()  # ... and so does the server, mid-request
        proc.communicate()
        srv.start()
        again = run_inject(records, out, srv.base_url, limit=6)
        assert again.returncode in (0, 1), again.stderr
    finally:
        srv.stop()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_items"] >= 2

    def rows(folder: Path) -> list[tuple]:
        pairs = [json.loads(x) for x in (folder / "pairs.jsonl").read_text().splitlines()]
        return sorted((p["record_id"], p["error_type"], p["rejected"]["content"]) for p in pairs)

    got, want = rows(out), rows(tmp_path / "calm")
    assert len({(r, t) for r, t, _ in got}) == len(got)  # nothing duplicated
    assert got == want  # nothing lost, nothing different from the undisturbed run


@pytest.mark.slow
def test_inject_stops_at_the_token_budget_and_a_rerun_resumes(server, records, tmp_path):
    out = tmp_path / "budget"
    # One request per item (one attempt, no fallback, chunks of one): the first request spends the budget of
    # one token, so the first item is finished and stored and the second is never sent.
    opts = ("--fallback", "none", "--max-attempts", "1")
    first = run_inject(records, out, server.base_url, "--set", "llm.backend.token_budget=1", *opts)
    said = " ".join((first.stderr + first.stdout).split())  # the console wraps long lines
    assert first.returncode == 1 and "token budget of 1 tokens is spent" in said, said
    assert "rerun the same command" in said and not (out / "summary.json").exists()
    with sqlite3.connect(out / "injections.sqlite") as db:
        stored = db.execute("SELECT count(*) FROM items").fetchone()[0]
    assert stored == 1
    again = run_inject(records, out, server.base_url, *opts)
    assert again.returncode in (0, 1), again.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_items"] == stored and summary["pairs"] + summary["rejected_items"] == 2


def test_profile_counts_a_served_policys_tokens_and_stops_at_its_budget_resumably(server, shared_data, tmp_path):
    """seapo profile with the policy on the server: profile.json reports the tokens it spent; with a
    budget of one token, the first chunk (one item) is answered and stored, the next request is never
    sent, the run stops saying how to continue, and a rerun without the budget finishes the rest."""
    from seapo.profile.config import ProfileConfig
    from seapo.profile.run import profile

    def config(**policy):
        return ProfileConfig(data=str(shared_data / "source" / "gsm8k" / "train.jsonl"), limit=3, chunk_size=1,
                             max_new_tokens=8, show_progress=False,
                             policy={"name": "openai", "model": SERVED_NAME, "base_url": server.base_url, **policy})

    whole = profile(tmp_path / "whole", config())
    usage = whole.profile["token_usage"]
    assert set(usage) == {"policy"}  # the reference judge spends none
    assert usage["policy"]["prompt_tokens"] > 30 and 3 <= usage["policy"]["completion_tokens"] <= 3 * 8
    out = tmp_path / "budget"
    with pytest.raises(BudgetExceeded, match=r"token budget of 1 tokens is spent.*1 items are stored"):
        profile(out, config(token_budget=1))
    assert not (out / "profile.json").exists()
    again = profile(out, config())
    assert again.profile["resumed_items"] == 1 and again.profile["answers"] == 3
    assert 0 < sum(again.profile["token_usage"]["policy"].values()) < sum(usage["policy"].values())
