"""The lm-eval engine: lm-evaluation-harness builds the paper's prompts and scores the answers.

* lm-eval sends exactly the prompts of seapo's protocol (checked against the native prompt builders);
* its answer filters and metrics score hand-made outputs as the protocol says (right, wrong,
  badly formatted);
* seapo's scorer under lm-eval (``SeapoLM``) and lm-eval's own ``HFLM`` give the same numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seapo.errors import InputError
from seapo.evaluate import builders
from seapo.evaluate.runner import EvalConfig, choose_engine, evaluate, select_items
from seapo.evaluate.tasks import get_task

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
    data = builders.LOADERS[spec.loader](spec, data_dir)
    return spec, data, select_items(data, groups, limit, name)


def _native_prompt(spec, data, item) -> str:
    return builders.PROMPTS[spec.prompt](item, data.fewshot.get(item["group"], []), spec)


@pytest.fixture(scope="module")
def tiny_lm(tiny_model) -> EvalLM:
    return EvalLM(str(tiny_model), dtype="fp32", batch_size=8)


@pytest.mark.parametrize("name,groups", [("truthfulqa_mc", None), ("mmlu", ["anatomy", "virology"])])
def test_multiple_choice_requests_are_the_native_prompts_and_answers(name, groups, tiny_lm, shared_data):
    spec, data, items = _task(name, shared_data / "eval", groups, limit=3)
    model = RecordingSeapoLM(tiny_lm)
    records = lmeval_engine.run_chunk(model, spec, data, items)
    expected = set()
    for item in items:
        answers = item["true"] + item["false"] if name == "truthfulqa_mc" else spec.choice_texts
        expected |= {(_native_prompt(spec, data, item), spec.target_delimiter + a) for a in answers}
    assert set(model.requests) == expected
    # Every item is scored, with the task's metrics, and each answer's log-likelihood is kept.
    assert list(records) == [it["id"] for it in items]
    for item in items:
        assert set(records[item["id"]]["metrics"]) == set(spec.metrics)
        assert len(records[item["id"]]["logliks"]) == len(set(item["true"] + item["false"]) if
                                                          name == "truthfulqa_mc" else spec.choice_texts)


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
    # lm-eval asked for the native prompt, with the task's stop sequences and length.
    for (context, settings), item in zip(model.requests, items, strict=True):
        assert context == _native_prompt(spec, data, item)
        assert settings["until"] == spec.stop and settings["max_gen_toks"] == spec.max_new_tokens
        assert settings["do_sample"] is False
    for item, (output, score) in zip(items, cases, strict=True):
        record = records[item["id"]]
        assert record["output"] == output
        assert record["metrics"]["exact_match"] == score, (output, record)
    if name == "math":  # lm-eval's second MATH metric is reported too
        assert [records[it["id"]]["metrics"]["math_verify"] for it in items] == [1.0, 0.0, 0.0]


def test_engine_choice():
    auto = EvalConfig()
    assert choose_engine(get_task("mmlu"), auto) == ("lm-eval", None)
    engine, note = choose_engine(get_task("humaneval"), auto)
    assert engine == "native" and "sandbox" in note
    assert choose_engine(get_task("gsm8k"), EvalConfig(engine="native")) == ("native", None)


def test_without_lm_eval_auto_falls_back_and_lm_eval_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(lmeval_engine, "installed", lambda: False)  # as on `pip install seapo` without [eval]
    engine, note = choose_engine(get_task("mmlu"), EvalConfig())
    assert engine == "native" and "pip install" in note
    with pytest.raises(InputError, match="lm-eval is not installed.*--engine native"):
        choose_engine(get_task("mmlu"), EvalConfig(engine="lm-eval"))


def test_seapo_backend_and_lm_evals_hflm_agree(tiny_model, shared_data, tmp_path):
    """The same lm-eval tasks scored by seapo's prefix-cached scorer and by lm-eval's HFLM."""
    common = dict(tasks=["truthfulqa_mc", "mmlu:anatomy"], limit=3, data_dir=str(shared_data / "eval"),
                  out=str(tmp_path), dtype="fp32", threads=1, use_cache=False)
    native = evaluate(str(tiny_model), EvalConfig(**common, engine="native", run_name="native"))
    ours = evaluate(str(tiny_model), EvalConfig(**common, engine="lm-eval", run_name="seapo"))
    hf = evaluate(str(tiny_model), EvalConfig(**common, engine="lm-eval", lm_backend="hf", run_name="hf"))
    assert ours.tasks["mmlu"].settings["engine"] == hf.tasks["mmlu"].settings["engine"] == "lm-eval"
    assert native.tasks["mmlu"].settings["engine"] == "native"
    for task in ("truthfulqa_mc", "mmlu"):
        for metric, value in hf.tasks[task].metrics.items():
            assert ours.tasks[task].metrics[metric] == pytest.approx(value, abs=1e-3), (task, metric)
            assert native.tasks[task].metrics[metric] == pytest.approx(value, abs=1e-3), (task, metric)


def test_math_runs_end_to_end_where_its_data_is(tiny_model, math_dir, tmp_path):
    """MATH is absent from the shared data; given a local math/test.jsonl it runs on both engines."""
    common = dict(tasks=["math"], limit=2, data_dir=str(math_dir), out=str(tmp_path), dtype="fp32", threads=1)
    theirs = evaluate(str(tiny_model), EvalConfig(**common, run_name="lm-eval"))
    native = evaluate(str(tiny_model), EvalConfig(**common, engine="native", run_name="native"))
    assert theirs.tasks["math"].settings["engine"] == "lm-eval" and native.tasks["math"].settings["engine"] == "native"
    assert set(theirs.tasks["math"].metrics) == {"exact_match", "math_verify"}
    assert set(native.tasks["math"].metrics) == {"exact_match"}
    for result in (theirs, native):
        # --limit counts per group (subject); each hand-made row is its own subject.
        assert result.tasks["math"].n == result.tasks["math"].n_available == len(MATH_ROWS)
        assert set(result.tasks["math"].groups) == set() and not result.tasks["math"].subset
        assert result.dimensions["math"] == result.tasks["math"].metrics["exact_match"]
        lines = (result.out_dir / "predictions" / "math.jsonl").read_text().splitlines()
        assert len(lines) == len(MATH_ROWS) and all("output" in json.loads(line) for line in lines)


def test_seapo_backend_generates_what_the_native_engine_generates(embedded_model, shared_data, tmp_path):
    """GSM8K through lm-eval over SeapoLM: same prompts, stop sequences and length as the native
    engine, so the embedded model writes the same solutions; both parse the same final number."""
    common = dict(tasks=["gsm8k"], limit=2, data_dir=str(shared_data / "eval"), out=str(tmp_path), threads=2)
    native = evaluate("embedded", EvalConfig(**common, engine="native", run_name="native"))
    theirs = evaluate("embedded", EvalConfig(**common, engine="lm-eval", run_name="lm-eval"))

    def predictions(result) -> list[dict]:
        return [json.loads(line) for line in (result.out_dir / "predictions" / "gsm8k.jsonl").read_text().splitlines()]

    for ours, lm in zip(predictions(native), predictions(theirs), strict=True):
        assert ours["output"] == lm["output"] and any(ch.isdigit() for ch in ours["output"])
        assert "\n\n" not in ours["output"] and "Question:" not in ours["output"]  # cut at the stop sequences
        if "The answer is" in ours["output"]:
            assert ours["extracted"] == lm["extracted"].replace(",", "").rstrip(".")
        assert ours["metrics"]["exact_match"] == lm["metrics"]["exact_match"]


def test_seapo_is_an_lm_eval_model_by_name(tiny_model, shared_data):
    """``simple_evaluate(model="seapo", ...)``: lm-eval builds SeapoLM from its registry and args."""
    from lm_eval.api.registry import get_model
    from lm_eval.tasks import TaskManager

    assert get_model("seapo") is SeapoLM
    spec, data, items = _task("truthfulqa_mc", shared_data / "eval", None, limit=3)
    mc2 = next(t for t in lmeval_engine.BUILDERS[spec.loader](spec, data, items) if t.config["task"].endswith("mc2"))
    out = lm_eval.simple_evaluate(model="seapo", model_args={"model": str(tiny_model), "dtype": "fp32"},
                                  tasks=[mc2.config], task_manager=TaskManager(include_defaults=False),
                                  batch_size=4, bootstrap_iters=0)
    native = EvalLM(str(tiny_model), dtype="fp32")
    expected = []
    for item in items:
        context = _native_prompt(spec, data, item)
        answers = item["true"] + item["false"]
        scores = native.loglikelihood([LoglikRequest(context, " " + a) for a in answers])
        expected.append(builders.SCORERS["truthfulqa_mc"](item, dict(zip(answers, scores, strict=True)))["mc2"])
    assert out["results"][mc2.config["task"]]["acc,none"] == pytest.approx(sum(expected) / len(expected), abs=1e-6)
