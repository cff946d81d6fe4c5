"""The lm-eval engine: lm-evaluation-harness builds the paper's prompts and scores the answers.

* lm-eval sends exactly the prompts of the paper's protocol (checked against the oracle's prompt
  builders, ``tests/evaluate/oracle.py``), with the task's stop sequences and lengths;
* its answer filters and metrics score hand-made outputs as the protocol says (right, wrong,
  badly formatted);
* seapo's scorer under lm-eval (``SeapoLM``), lm-eval's own ``HFLM`` and the oracle's scorers give
  the same numbers;
* every generation goes through the transformers backend as raw-text requests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seapo.backends import GenerationRequest, make_backend
from seapo.backends.transformers_backend import TransformersBackend
from seapo.evaluate import loaders
from seapo.evaluate.runner import engine_settings, evaluate, select_items
from seapo.evaluate.tasks import get_task
from tests.evaluate import oracle
from tests.evaluate.helpers import eval_config

lm_eval = pytest.importorskip("lm_eval")

from lm_eval.api.model import LM  # noqa: E402

from seapo.evaluate import lmeval_engine  # noqa: E402
from seapo.evaluate.lm import EvalLM, LoglikRequest  # noqa: E402
from seapo.evaluate.lmeval_model import SeapoLM  # noqa: E402

MATH_ROWS = [
    {"problem": "What is $\\frac{1}{4} + \\frac{1}{4}$?", "type": "Prealgebra", "level": "Level 1",
     "solution": "Adding, $\\frac{1}{4} + \\frac{1}{4} = \\boxed{\\frac{1}{2}}$."},
    {"problem": "Solve $2x + 3 = 11$.", "type": "Algebra", "level": "Level 1",
     "solution": "Subtract 3 and divide by 2: $x = \\boxed{4}$."},
    {"problem": "How many ways can 3 books be arranged on a shelf?", "type": "Counting & Probability",
     "level": "Level 1", "solution": "There are $3! = \\boxed{6}$ arrangements."},
]


class CannedLM(LM):
    """An lm-eval model that answers ``generate_until`` with hand-written text and records requests."""

    def __init__(self, outputs: list[str]) -> None:
        super().__init__()
        self.outputs = outputs
        self.requests: list[tuple[str, dict]] = []

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        self.requests += [r.args for r in requests]
        return [self.outputs[r.doc_id] for r in requests]

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise AssertionError("generation tasks make no log-likelihood requests")

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise AssertionError("not used")


class RecordingSeapoLM(SeapoLM):
    def __init__(self, lm: EvalLM) -> None:
        super().__init__(lm)
        self.requests: list[tuple[str, str]] = []

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        self.requests += [r.args for r in requests]
        return super().loglikelihood(requests)


@pytest.fixture(scope="module")
def math_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("math-data")
    (folder / "math").mkdir()
    (folder / "math" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in MATH_ROWS), encoding="utf-8")
    return folder


def _task(name: str, data_dir: Path, groups: list[str] | None = None, limit: int | None = None):
    spec = get_task(name)
    data = loaders.LOADERS[spec.loader](spec, data_dir)
    return spec, data, select_items(data, groups, limit, name)


@pytest.fixture(scope="module")
def tiny_lm(tiny_model) -> EvalLM:
    return EvalLM(str(tiny_model), dtype="fp32", batch_size=8)


def _oracle_scores(lm: EvalLM, name: str, spec, data, items) -> dict[str, float]:
    """The oracle's metrics of ``items``: its prompts and answers, log-likelihoods from ``lm``, its scorers."""
    per_item = []
    for item in items:
        answers = oracle.answers(name, item)
        logliks = lm.loglikelihood([LoglikRequest(oracle.prompt(spec, data, item), oracle.TARGET_DELIMITER + a)
                                    for a in answers])
        per_item.append(oracle.score_logliks(name, item, dict(zip(answers, logliks, strict=True))))
    return {m: sum(s[m] for s in per_item) / len(per_item) for m in spec.metrics}


@pytest.mark.parametrize("name,groups", [("truthfulqa_mc", None), ("mmlu", ["anatomy", "virology"])])
def test_multiple_choice_requests_are_the_oracle_prompts_and_answers(name, groups, tiny_lm, shared_data):
    spec, data, items = _task(name, shared_data / "eval", groups, limit=3)
    model = RecordingSeapoLM(tiny_lm)
    records = lmeval_engine.run_chunk(model, spec, data, items)
    expected = set()
    for item in items:
        expected |= {(oracle.prompt(spec, data, item), oracle.TARGET_DELIMITER + a) for a in oracle.answers(name, item)}
    assert set(model.requests) == expected
    # Every item is scored, with the task's metrics, and each answer's log-likelihood is kept.
    assert list(records) == [it["id"] for it in items]
    for item in items:
        assert set(records[item["id"]]["metrics"]) == set(spec.metrics)
        assert len(records[item["id"]]["logliks"]) == len(set(oracle.answers(name, item)))
    # ... and lm-eval's metrics are the oracle's, computed from the same log-likelihoods.
    for item in items:
        ours = oracle.score_logliks(name, item, records[item["id"]]["logliks"])
        for metric in spec.metrics:
            assert records[item["id"]]["metrics"][metric] == pytest.approx(ours[metric], abs=1e-9)


GSM8K_CASES = [  # (output, lm-eval's score): its flexible-extract filter takes the last number
    ("She has 16 - 3 - 4 = 9 eggs. 9 * 2 = 18. The answer is 18.", 1.0),
    ("She sells 9 eggs for $2 each, making $18", 1.0),       # no "The answer is": last number
    ("She sells 9 eggs. The answer is 17.", 0.0),             # wrong
    ("I cannot tell.", 0.0),                                  # no number at all
]
BBH_CASES = [  # navigate: target "No"; lm-eval reads what follows "the answer is"
    ("Turn around twice: we are back where we began... So the answer is No.", 1.0),
    ("So the answer is Yes.", 0.0),
    ("No", 0.0),  # the answer phrase is missing: lm-eval scores it wrong
]
MATH_CASES = [
    ("$\\frac{1}{4}+\\frac{1}{4}=\\frac{1}{2}$.\nFinal Answer: The final answer is $\\frac{1}{2}$. I hope it is "
     "correct.", 1.0),
    ("$2x=8$, so $x=5$.\nFinal Answer: The final answer is $5$. I hope it is correct.", 0.0),
    ("There are six arrangements.", 0.0),  # no final-answer line: nothing to compare
]


@pytest.mark.parametrize("name,groups,cases", [("gsm8k", None, GSM8K_CASES), ("bbh", ["navigate"], BBH_CASES),
                                               ("math", None, MATH_CASES)])
def test_generation_tasks_prompts_and_lm_eval_scoring(name, groups, cases, shared_data, math_dir):
    data_dir = math_dir if name == "math" else shared_data / "eval"
    spec, data, items = _task(name, data_dir, groups, limit=len(cases))
    if name == "gsm8k":  # every case is about the first problem (Janet's ducks: 18 dollars)
        items = [dict(items[0], id=str(k)) for k in range(len(cases))]
        assert items[0]["target"] == "18"
    if name == "bbh":
        items = [dict(it, target="No") for it in items]
    model = CannedLM([out for out, _ in cases])
    records = lmeval_engine.run_chunk(model, spec, data, items)
    # lm-eval asked for the oracle's prompt, with the task's stop sequences and length.
    for (context, settings), item in zip(model.requests, items, strict=True):
        assert context == oracle.prompt(spec, data, item)
        assert settings["until"] == spec.stop and settings["max_gen_toks"] == spec.max_new_tokens
        assert settings["do_sample"] is False
    for item, (output, score) in zip(items, cases, strict=True):
        record = records[item["id"]]
        assert record["output"] == output
        assert record["metrics"]["exact_match"] == score, (output, record)
    if name == "math":  # lm-eval's second MATH metric is reported too
        assert [records[it["id"]]["metrics"]["math_verify"] for it in items] == [1.0, 0.0, 0.0]


def test_every_task_names_its_engine_and_versions():
    """One engine for every task it can express; HumanEval in the sandbox. No choice, no fallback."""
    for name in ("truthfulqa_mc", "mmlu", "gsm8k", "bbh", "math"):
        settings = engine_settings(get_task(name))
        assert settings["engine"] == "lm-eval" and settings["lm_eval_version"] == lmeval_engine.version()
        assert settings["task_versions"] and settings["protocol_hash"] == get_task(name).protocol_hash()
    assert engine_settings(get_task("humaneval")) == {"engine": "sandbox", "lm_eval_version": None,
                                                      "task_versions": {},
                                                      "protocol_hash": get_task("humaneval").protocol_hash()}
    assert engine_settings(get_task("truthfulqa_mc"))["task_versions"] == {
        "truthfulqa/truthfulqa_mc1.yaml": 2.0, "truthfulqa/truthfulqa_mc2.yaml": 3.0}


def test_seapo_backend_hflm_and_the_oracle_agree(tiny_model, tiny_lm, shared_data, tmp_path):
    """The same lm-eval tasks scored by seapo's prefix-cached scorer and by lm-eval's HFLM, and by the
    oracle's prompts and scorers over plain (unshared) log-likelihoods."""
    common = dict(tasks=["truthfulqa_mc", "mmlu:anatomy"], limit=3, data_dir=str(shared_data / "eval"),
                  out=str(tmp_path), dtype="fp32", threads=1, use_cache=False)
    ours = evaluate(str(tiny_model), eval_config(**common, run_name="seapo"))
    hf = evaluate(str(tiny_model), eval_config(**common, lm_backend="hf", run_name="hf"))
    assert ours.tasks["mmlu"].settings["engine"] == hf.tasks["mmlu"].settings["engine"] == "lm-eval"
    assert (ours.tasks["mmlu"].settings["lm_backend"], hf.tasks["mmlu"].settings["lm_backend"]) == ("seapo", "hf")
    for task, groups in (("truthfulqa_mc", None), ("mmlu", ["anatomy"])):
        spec, data, items = _task(task, shared_data / "eval", groups, limit=3)
        expected = _oracle_scores(tiny_lm, task, spec, data, items)
        for metric, value in hf.tasks[task].metrics.items():
            assert ours.tasks[task].metrics[metric] == pytest.approx(value, abs=1e-3), (task, metric)
            assert expected[metric] == pytest.approx(value, abs=1e-3), (task, metric)


def test_math_runs_end_to_end_where_its_data_is(tiny_model, math_dir, tmp_path):
    """MATH is absent from the shared data; given a local math/test.jsonl it runs through lm-eval."""
    common = dict(tasks=["math"], limit=2, data_dir=str(math_dir), out=str(tmp_path), dtype="fp32", threads=1)
    theirs = evaluate(str(tiny_model), eval_config(**common, run_name="lm-eval"))
    assert theirs.tasks["math"].settings["engine"] == "lm-eval"
    assert set(theirs.tasks["math"].metrics) == {"exact_match", "math_verify"}
    result = theirs
    # --limit counts per group (subject); each hand-made row is its own subject.
    assert result.tasks["math"].n == result.tasks["math"].n_available == len(MATH_ROWS)
    assert set(result.tasks["math"].groups) == set() and not result.tasks["math"].subset
    assert result.dimensions["math"] == result.tasks["math"].metrics["exact_match"]
    lines = (result.out_dir / "predictions" / "math.jsonl").read_text().splitlines()
    assert len(lines) == len(MATH_ROWS) and all("output" in json.loads(line) for line in lines)
    # The oracle's answer check agrees with lm-eval's on what the model wrote.
    for line in lines:
        record = json.loads(line)
        assert oracle.score_math(record, [record["output"]])["exact_match"] == record["metrics"]["exact_match"]


@pytest.mark.parametrize("generator", ["transformers", "llamacpp"])
def test_seapo_backend_generates_what_the_oracle_prompts_generate(generator, embedded_model, shared_data, tmp_path):
    """GSM8K through lm-eval over SeapoLM: lm-eval asks for the oracle's prompts, stop sequences and
    length, so the embedded model writes what the generation backend writes for the oracle's prompts
    directly; lm-eval and the oracle parse the same final number."""
    if generator == "llamacpp":
        pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    common = dict(tasks=["gsm8k"], limit=2, data_dir=str(shared_data / "eval"), out=str(tmp_path), threads=2,
                  generation_backend=generator)
    theirs = evaluate("embedded", eval_config(**common, run_name="lm-eval"))
    spec, data, items = _task("gsm8k", shared_data / "eval", None, limit=2)
    backend = (TransformersBackend(eval_config().backend) if generator == "transformers"
               else make_backend(name="llamacpp", model="embedded", n_threads=2))
    direct = backend.generate([GenerationRequest(prompt=oracle.prompt(spec, data, it), stop=tuple(spec.stop),
                                                 max_new_tokens=spec.max_new_tokens) for it in items])
    lines = (theirs.out_dir / "predictions" / "gsm8k.jsonl").read_text().splitlines()
    for item, generation, lm in zip(items, direct, map(json.loads, lines), strict=True):
        output = generation.text
        assert output == lm["output"] and any(ch.isdigit() for ch in output)
        assert "\n\n" not in output and "Question:" not in output  # cut at the stop sequences
        ours = oracle.score_gsm8k(item, [output])
        if "The answer is" in output:
            assert ours["extracted"] == lm["extracted"].replace(",", "").rstrip(".")
        assert ours["exact_match"] == lm["metrics"]["exact_match"]


def test_generation_goes_through_the_backend_as_raw_text(tiny_model, shared_data, tmp_path, monkeypatch):
    """Every generation of an evaluation -- lm-eval's generate_until under SeapoLM, HumanEval's greedy and
    sampled completions -- is a raw-text request to TransformersBackend.generate, with the task's
    prompt, stop sequences and length."""
    seen: list = []
    original = TransformersBackend.generate

    def recording(self, requests, progress=None):
        seen.extend(requests)
        return original(self, requests, progress)

    monkeypatch.setattr(TransformersBackend, "generate", recording)
    result = evaluate(str(tiny_model), eval_config(
        tasks=["gsm8k", "bbh:boolean_expressions", "humaneval"], limit=1, data_dir=str(shared_data / "eval"),
        out=str(tmp_path), dtype="fp32", threads=1, num_samples=2, use_cache=False))
    assert {t.settings["engine"] for t in result.tasks.values()} == {"lm-eval", "sandbox"}
    assert all(r.messages is None and r.prompt for r in seen)  # raw text, no chat template
    for name, groups in (("gsm8k", None), ("bbh", ["boolean_expressions"])):
        spec, data, items = _task(name, shared_data / "eval", groups, limit=1)
        (request,) = [r for r in seen if r.prompt == oracle.prompt(spec, data, items[0])]
        assert request.stop == tuple(spec.stop) and request.max_new_tokens == spec.max_new_tokens
        assert request.temperature == 0 and request.n == 1
    he = get_task("humaneval")
    prompt = loaders.load_humaneval(he, shared_data / "eval").items[0]["problem"]["prompt"]
    greedy, sampled = sorted((r for r in seen if r.prompt == prompt), key=lambda r: r.n)
    assert greedy.n == 1 and greedy.temperature == 0 and greedy.stop == tuple(he.stop)
    assert (sampled.n, sampled.temperature, sampled.top_p, sampled.stop) == (2, 0.8, 0.95, tuple(he.stop))
    assert len(seen) == 4


def test_a_failed_generation_is_reported_scored_zero_and_not_cached(tiny_model, tmp_path):
    """An input longer than the model's context fails in the backend: lm-eval gets "" (scored wrong), the
    predictions say why, and the item is computed again next time instead of being served from the cache."""
    rows = [{"question": "How many? " * 1200, "answer": "So 3.\n#### 3"},
            {"question": "What is 1 + 1?", "answer": "1 + 1 = 2\n#### 2"}]
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = eval_config(tasks=["gsm8k"], data_dir=str(tmp_path), out=str(tmp_path / "out"), dtype="fp32",
                         threads=1)
    first = evaluate(str(tiny_model), config)
    assert first.tasks["gsm8k"].errors == 1 and first.tasks["gsm8k"].n == 2
    records = [json.loads(line) for line in (first.out_dir / "predictions" / "gsm8k.jsonl").read_text().splitlines()]
    assert "exceeds the model's 2048 positions" in records[0]["error"] and records[0]["output"] == ""
    assert records[0]["metrics"]["exact_match"] == 0.0 and "error" not in records[1]
    again = evaluate(str(tiny_model), config)
    assert again.tasks["gsm8k"].cached == 1 and again.tasks["gsm8k"].errors == 1


def test_seapo_is_an_lm_eval_model_by_name(tiny_model, shared_data):
    """``simple_evaluate(model="seapo", ...)``: lm-eval builds SeapoLM from its registry and args."""
    from lm_eval.api.registry import get_model
    from lm_eval.tasks import TaskManager

    assert get_model("seapo") is SeapoLM
    assert get_model("hf").__name__ == "HFLM"  # registering seapo does not hide lm-eval's own models
    spec, data, items = _task("truthfulqa_mc", shared_data / "eval", None, limit=3)
    mc2 = next(t for t in lmeval_engine.build_tasks(spec, data, items) if t.name.endswith("mc2"))
    out = lm_eval.simple_evaluate(model="seapo", model_args={"model": str(tiny_model), "dtype": "float32"},
                                  tasks=[mc2.config], task_manager=TaskManager(include_defaults=False),
                                  batch_size=4, bootstrap_iters=0)
    expected = _oracle_scores(EvalLM(str(tiny_model), dtype="fp32"), "truthfulqa_mc", spec, data, items)["mc2"]
    assert out["results"][mc2.name]["acc,none"] == pytest.approx(expected, abs=1e-6)


def test_a_chunk_outside_a_git_checkout_prints_nothing_and_skips_lm_evals_environment_record(
        shared_data, tmp_path, monkeypatch, capfd):
    """lm-eval runs `git describe` (its "fatal: not a git repository" goes straight to fd 2) and
    torch's collect_env (seconds) on every call; seapo records the environment once per run."""
    import lm_eval.evaluator as evaluator

    monkeypatch.chdir(tmp_path)  # no .git above the temporary folder
    calls = []
    monkeypatch.setattr("torch.utils.collect_env.get_pretty_env_info", lambda: calls.append(1) or "")
    spec, data, items = _task("gsm8k", shared_data / "eval", None, limit=2)
    original = evaluator.get_git_commit_hash
    records = lmeval_engine.run_chunk(CannedLM(["#### 18", "#### 3"]), spec, data, items)
    assert len(records) == 2
    assert "not a git repository" not in capfd.readouterr().err
    assert calls == [] and evaluator.get_git_commit_hash is original  # skipped inside the call only
