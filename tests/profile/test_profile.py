"""`seapo profile`: the policy's answers judged against references, counts and intervals, outputs,
resume, and the profile strategy fed from it."""

import json
import subprocess
import sys

import pytest

from seapo.errors import InputError
from seapo.inject.error_types import ErrorType
from seapo.outputs import verify_set
from seapo.profile import ProfileConfig, profile
from seapo.profile.data import load_items
from seapo.profile.stats import bootstrap_shares, summarize, wilson


def gsm8k(shared_data):
    return str(shared_data / "source" / "gsm8k" / "train.jsonl")


def test_wilson_and_bootstrap_intervals():
    low, high = wilson(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)  # textbook values
    assert wilson(0, 0) is None and wilson(0, 5)[0] == 0.0
    answers = [frozenset({ErrorType.CORRECTNESS})] * 60 + [frozenset({ErrorType.LOGIC})] * 40
    ci = bootstrap_shares(answers, seed=0)
    assert ci[ErrorType.CORRECTNESS][0] < 0.6 < ci[ErrorType.CORRECTNESS][1]
    assert ci[ErrorType.CORRECTNESS][1] - ci[ErrorType.CORRECTNESS][0] < 0.25
    assert ci == bootstrap_shares(answers, seed=0)  # seeded
    figures = summarize([(a, False) for a in answers] + [(frozenset(), False)] * 5 + [(frozenset(), True)] * 3, 0)
    assert (figures["erroneous"], figures["judged_correct"], figures["unknown"]) == (100, 5, 3)
    assert figures["distribution"]["correctness"]["share"] == 0.6
    assert figures["rates"]["logic"]["rate"] == round(40 / 105, 4)


def test_data_formats_and_bad_rows(shared_data, tmp_path):
    items, fmt = load_items(gsm8k(shared_data), limit=3)
    assert fmt == "gsm8k" and items[0].correct_answers == ("72",) and items[0].group == "gsm8k"
    tqa, fmt = load_items(str(shared_data / "eval" / "truthfulqa" / "TruthfulQA.csv"), limit=40)
    assert fmt == "truthfulqa" and tqa[0].incorrect_answers and tqa[0].group == "Misconceptions"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "a\\n#### 3"}\n{"question": "q2", "answer": "no final"}\n')
    with pytest.raises(InputError) as err:
        load_items(str(bad))
    assert (err.value.path, err.value.line, err.value.field) == (str(bad), 2, "answer")
    with pytest.raises(InputError, match="no such file"):
        load_items(str(tmp_path / "missing.jsonl"))


def tiny_config(shared_data, model, **kw):
    return ProfileConfig(data=gsm8k(shared_data), policy={"model": str(model), "dtype": "fp32", "batch_size": 5},
                         **{"max_new_tokens": 8, **kw})


def test_profile_writes_a_complete_set_and_resumes_after_an_interruption(shared_data, tiny_model, tmp_path,
                                                                         monkeypatch):
    import seapo.profile.run as run_module

    config = tiny_config(shared_data, tiny_model, limit=5, chunk_size=2)
    real = run_module.build_judge
    calls = []

    def failing(cfg):
        judge = real(cfg)
        inner = judge.judge

        def judge_once(items):
            calls.append(len(items))
            if len(calls) == 2:
                raise KeyboardInterrupt  # killed in the second chunk
            return inner(items)

        judge.judge = judge_once
        return judge

    monkeypatch.setattr(run_module, "build_judge", failing)
    with pytest.raises(KeyboardInterrupt):
        profile(tmp_path, config)
    assert not (tmp_path / "_complete.json").exists()  # nothing published half-way
    monkeypatch.setattr(run_module, "build_judge", real)
    result = profile(tmp_path, config)
    p = result.profile
    assert p["resumed_items"] == 2 and p["answers"] == 5 and p["items"] == 5
    assert p["judged_correct"] + p["unknown"] + p["erroneous"] == 5
    assert p["judge"]["name"] == "reference" and p["intervals"]["confidence"] == 0.95
    rows = [json.loads(line) for line in result.verdicts_path.read_text().splitlines()]
    assert len(rows) == 5 and all(set(r["findings"]) == {"correctness", "logic", "hallucination"} for r in rows)
    assert result.chart_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    verify_set(tmp_path, stage="profile")
    # Same settings again: everything comes from the store.
    assert profile(tmp_path, config).profile["resumed_items"] == 5


def test_profile_cli_and_a_records_file_with_the_reference_judge_warns(shared_data, tiny_model, tmp_path):
    from tests.inject.helpers import gsm8k_records, write_records

    records = write_records(tmp_path / "records.jsonl", gsm8k_records(shared_data, 3))
    out = subprocess.run([sys.executable, "-m", "seapo.cli", "profile", "--data", str(records), "--model",
                          str(tiny_model), "--max-new-tokens", "4", "--out", str(tmp_path / "p")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    p = json.loads((tmp_path / "p" / "profile.json").read_text())
    assert p["data_format"] == "records" and p["answers"] == 3 and p["warnings"]
    assert "use --judge llm" in out.stderr
    bad = subprocess.run([sys.executable, "-m", "seapo.cli", "profile", "--data", str(tmp_path / "nope.jsonl"),
                          "--out", str(tmp_path / "q")], capture_output=True, text=True)
    assert bad.returncode == 2 and "nope.jsonl" in bad.stderr


def _profile_then_inject(shared_data, tmp_path, n, max_new_tokens):
    from seapo.inject.pipeline import InjectConfig, inject
    from tests.inject.helpers import gsm8k_records

    result = profile(tmp_path / "profile", ProfileConfig(data=gsm8k(shared_data), limit=n,
                                                         max_new_tokens=max_new_tokens,
                                                         policy={"batch_size": 16}))
    p = result.profile
    assert p["answers"] == n and p["erroneous"] > 0
    assert sum(p["groups"]["gsm8k"]["counts"].values()) == sum(p["counts"].values())
    config = InjectConfig(injector="rules", strategy="profile", strategy_options={"profile": str(result.profile_path)})
    injected = inject(gsm8k_records(shared_data, n), tmp_path / "inject", config)
    plan = injected.summary["plan"]
    measured = {t: d["share"] for t, d in p["distribution"].items()}
    expected = {t: round(0.05 + 0.85 * s, 4) for t, s in measured.items()}
    assert plan["target"] == expected and sum(plan["planned"].values()) == n
    return p, injected


def test_a_profile_without_erroneous_answers_cannot_guide_injection(shared_data, tiny_model, tmp_path):
    """The fast chain (a tiny random model says nothing the reference judge can call wrong): the
    profile strategy refuses it, naming the file, before anything is generated."""
    from seapo.inject.pipeline import InjectConfig, inject
    from tests.inject.helpers import gsm8k_records

    result = profile(tmp_path / "profile", tiny_config(shared_data, tiny_model, limit=5, max_new_tokens=4))
    assert result.profile["erroneous"] == 0 and result.profile["distribution"]["logic"]["share"] is None
    config = InjectConfig(injector="rules", strategy="profile", strategy_options={"profile": str(result.profile_path)})
    with pytest.raises(InputError, match="no erroneous answer") as err:
        inject(gsm8k_records(shared_data, 5), tmp_path / "inject", config)
    assert err.value.path == str(result.profile_path)


@pytest.mark.slow
def test_profile_50_gsm8k_problems_then_inject_with_the_profile_strategy(shared_data, tmp_path):
    p, injected = _profile_then_inject(shared_data, tmp_path, 50, 256)
    assert injected.summary["pairs"] > 0


@pytest.mark.slow  # two CLI processes loading a model: long on the shared machine
def test_kill_9_mid_run_loses_at_most_the_chunk_in_flight(shared_data, tiny_model, tmp_path):
    import sqlite3
    import time

    out = tmp_path / "p"
    cmd = [sys.executable, "-m", "seapo.cli", "profile", "--data", gsm8k(shared_data), "--model", str(tiny_model),
           "--limit", "8", "--chunk-size", "1", "--max-new-tokens", "16", "-b", "1", "--out", str(out),
           "--set", "policy.dtype=fp32"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stored = 0
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            with sqlite3.connect(out / "profile.sqlite") as db:
                stored = db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0]
        except sqlite3.Error:
            continue
        if stored >= 2:
            proc.kill()  # SIGKILL: no clean-up runs
            break
    proc.wait()
    if stored < 2 or stored >= 8:
        pytest.skip(f"could not catch the run mid-way ({stored} stored)")
    assert not (out / "_complete.json").exists()
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    p = json.loads((out / "profile.json").read_text())
    assert p["answers"] == 8 and p["resumed_items"] >= 2
    verify_set(out, stage="profile")
