"""Task registry and data loaders on real data; the oracle's prompts and scorers on hand-made predictions
(no model)."""

from __future__ import annotations

import math
from pathlib import Path

import jinja2
import pytest
import yaml

from seapo.errors import ConfigError, InputError
from seapo.evaluate import loaders
from seapo.evaluate.humaneval import run_chunk as run_sandbox_chunk
from seapo.evaluate.humaneval import score as score_humaneval
from seapo.evaluate.tasks import SUITES, TASK_DIR, available_tasks, get_task, load_task_file
from tests.evaluate import oracle
from tests.evaluate.helpers import CannedBackend


@pytest.fixture(scope="module")
def eval_dir(shared_data: Path) -> Path:
    return shared_data / "eval"


# ----------------------------------------------------------------------------- registry
def test_every_paper_task_is_a_valid_yaml():
    assert set(SUITES["paper"]) <= set(available_tasks())
    dims = {get_task(t).dimension for t in SUITES["paper"]}
    assert dims == {"truthfulness", "knowledge", "math", "reasoning", "code"}
    assert get_task("mmlu").fewshot == 5 and get_task("gsm8k").fewshot == 8
    assert get_task("bbh").fewshot == 3 and get_task("math").fewshot == 4
    assert get_task("humaneval").generation.samples == 20
    assert get_task("humaneval").generation.temperature == 0.8


def test_bad_task_yaml_names_file_and_field(tmp_path):
    raw = yaml.safe_load((TASK_DIR / "gsm8k.yaml").read_text())
    bad = dict(raw, scorer="no_such_scorer")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(InputError) as err:
        load_task_file(path)
    assert err.value.path == str(path) and err.value.field == "scorer"
    path.write_text(yaml.safe_dump(dict(raw, kind="essay")))
    with pytest.raises(InputError) as err:
        load_task_file(path)
    assert err.value.field == "kind"
    with pytest.raises(InputError, match="unknown task"):
        get_task("no-such-task")


def test_task_files_name_a_loader_and_an_engine():
    """Tasks are data: each names its data loader and either its lm-eval mapping and lm-eval's own task
    YAMLs, or the sandbox (HumanEval); the names are the registries' own."""
    from typing import get_args

    from seapo.evaluate import lmeval_engine
    from seapo.evaluate.tasks import LoaderName, MappingName

    assert set(loaders.LOADERS) == set(get_args(LoaderName))
    assert set(lmeval_engine.MAPPINGS) == set(get_args(MappingName))
    engines = {t: get_task(t).engine for t in available_tasks()}
    assert engines == {"truthfulqa_mc": "lm-eval", "mmlu": "lm-eval", "gsm8k": "lm-eval", "math": "lm-eval",
                       "bbh": "lm-eval", "humaneval": "sandbox"}
    assert get_task("humaneval").lmeval is None
    if lmeval_engine.installed():  # every lm-eval task YAML named exists in this lm-eval, with a version
        for name in available_tasks():
            spec = get_task(name)
            if spec.engine == "lm-eval":
                versions = lmeval_engine.task_versions(spec)
                assert set(versions) == {t.config for t in spec.lmeval.tasks} and None not in versions.values()


@pytest.mark.parametrize("change,field,line", [
    ({"loader": "gsm8k_csv"}, "loader", True),
    ({"lmeval": {"mapping": "no_such_mapping", "tasks": [{"config": "x.yaml", "metrics": {"acc": "acc"}}]}},
     "lmeval.mapping", True),
    ({"engine": "native"}, "engine", True),
    ({"max_new_tokens": 0}, "max_new_tokens", True),
    ({"generation": {"top_p": 1.5}}, "generation.top_p", True),
])
def test_bad_task_values_name_file_line_and_field(tmp_path, change, field, line):
    raw = yaml.safe_load((TASK_DIR / "gsm8k.yaml").read_text())
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(dict(raw, **change), sort_keys=False))
    with pytest.raises(ConfigError) as err:
        load_task_file(path)
    assert (err.value.path, err.value.field) == (str(path), field)
    assert err.value.line is not None
    assert f"{path}:{err.value.line}:" in str(err.value)


@pytest.mark.parametrize("change,message", [
    ({"lmeval": None}, "needs an 'lmeval' section"),
    ({"kind": "code"}, "run in seapo's sandbox"),
    ({"engine": "sandbox"}, "is for code tasks"),
    ({"metrics": ["exact_match", "bleu"]}, "not produced by the lm-eval tasks"),
    ({"dimension_metrics": ["acc"]}, "not among the task's metrics"),
])
def test_task_engine_and_metrics_must_fit(tmp_path, change, message):
    raw = yaml.safe_load((TASK_DIR / "gsm8k.yaml").read_text())
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(dict(raw, **change)))
    with pytest.raises(ConfigError, match=message) as err:
        load_task_file(path)
    assert err.value.path == str(path)


def test_protocol_hash_changes_with_protocol_only():
    spec = get_task("gsm8k")
    assert spec.protocol_hash() == get_task("gsm8k").protocol_hash()
    assert spec.model_copy(update={"fewshot": 4}).protocol_hash() != spec.protocol_hash()
    assert spec.model_copy(update={"description": "x"}).protocol_hash() == spec.protocol_hash()


# ----------------------------------------------------------------------------- TruthfulQA
def test_truthfulqa_prompt_is_lm_evals_exactly(eval_dir):
    """Our primer + question renders identically to lm-eval's own truthfulqa_mc1 template."""
    lm_eval = pytest.importorskip("lm_eval")
    template = yaml.safe_load((Path(lm_eval.__file__).parent / "tasks" / "truthfulqa" /
                               "truthfulqa_mc1.yaml").read_text())["doc_to_text"]
    items = loaders.read_truthfulqa_csv(eval_dir / "truthfulqa" / "TruthfulQA.csv")
    spec = get_task("truthfulqa_mc")
    for item in items[:3]:
        theirs = jinja2.Template(template).render(question=item["question"])
        assert oracle.prompt_truthfulqa(item, [], spec.fewshot) == theirs


def test_truthfulqa_csv_answers(eval_dir):
    items = loaders.read_truthfulqa_csv(eval_dir / "truthfulqa" / "TruthfulQA.csv")
    assert len(items) == 817
    first = items[0]
    assert first["question"] == "What happens to you if you eat watermelon seeds?"
    assert first["best"] == "The watermelon seeds pass through your digestive system."
    assert first["true"][0] == first["best"] and first["true"].count(first["best"]) == 1
    assert "Nothing happens." in first["true"] and "You grow watermelons in your stomach." in first["false"]
    assert all(a.endswith(".") for it in items for a in it["true"] + it["false"])


def test_truthfulqa_csv_bad_row_names_line_and_field(tmp_path):
    path = tmp_path / "tqa.csv"
    path.write_text("Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\n"
                    "A,B,Q1?,Yes,Yes; Sure,No,s\nA,B,Q2?,Yes,Yes,,s\n")
    with pytest.raises(InputError) as err:
        loaders.read_truthfulqa_csv(path)
    assert (err.value.line, err.value.field) == (3, "Incorrect Answers")


def test_truthfulqa_scoring_by_hand():
    item = loaders.truthfulqa_item(0, "Q?", "Best", ["Best.", "Also true."], ["False one.", "False two."])
    assert item["true"] == ["Best.", "Also true."]
    # Best beats every false answer -> MC1 = 1; MC2 = mass of true answers.
    scores = {"Best.": -1.0, "Also true.": -2.0, "False one.": -1.5, "False two.": -3.0}
    got = oracle.score_truthfulqa(item, scores)
    expected = (math.exp(-1) + math.exp(-2)) / sum(math.exp(v) for v in scores.values())
    assert got["mc1"] == 1.0 and got["mc2"] == pytest.approx(expected)
    # A false answer ahead of the best one -> MC1 = 0; a tie also loses (TruthfulQA's rule).
    assert oracle.score_truthfulqa(item, dict(scores, **{"False one.": -0.5}))["mc1"] == 0.0
    assert oracle.score_truthfulqa(item, dict(scores, **{"False one.": -1.0}))["mc1"] == 0.0
    # Very long answers: no underflow to 0/0.
    tiny = {k: v - 5000 for k, v in scores.items()}
    assert oracle.score_truthfulqa(item, tiny)["mc2"] == pytest.approx(expected)


# ----------------------------------------------------------------------------- MMLU
def test_mmlu_loader_and_prompt(eval_dir):
    spec = get_task("mmlu")
    data = loaders.load_mmlu(spec, eval_dir)
    assert len(data.items) == 14042 and len(data.fewshot) == 57
    item = next(it for it in data.items if it["group"] == "abstract_algebra")
    prompt = oracle.prompt_mmlu(item, data.fewshot["abstract_algebra"], spec.fewshot)
    assert prompt.startswith("The following are multiple choice questions (with answers) about abstract algebra.\n\n")
    assert prompt.count("\nAnswer:") == 6 and prompt.endswith("\nD. " + item["choices"][3] + "\nAnswer:")
    first_dev = data.fewshot["abstract_algebra"][0]
    assert f"{first_dev['question'].strip()}\nA. " in prompt and "Answer: B\n\n" in prompt  # dev[0] answer=1


def test_mmlu_bad_answer_names_line(tmp_path):
    path = tmp_path / "x_test.csv"
    path.write_text("question,choice0,choice1,choice2,choice3,answer\nq,a,b,c,d,1\nq2,a,b,c,d,E\n")
    with pytest.raises(InputError) as err:
        loaders.read_mmlu_csv(path)
    assert (err.value.line, err.value.field) == (3, "answer")


def test_choice_accuracy_by_hand():
    item = {"continuations": ["A", "B", "C", "D"], "label": 2}
    assert oracle.score_choice(item, {"A": -3, "B": -2, "C": -1, "D": -4}) == {"acc": 1.0, "pred": 2}
    assert oracle.score_choice(item, {"A": -0.5, "B": -2, "C": -1, "D": -4})["acc"] == 0.0


# ----------------------------------------------------------------------------- GSM8K
@pytest.mark.parametrize("output,expected", [
    (" Natalia sold 48 / 2 = 24 clips in May. 48 + 24 = 72. The answer is 72.", 1.0),
    (" She had 1,000 dollars... The answer is $1,000.", None),  # right iff target is 1000
    (" 48 + 24 = 72 clips in total.", 1.0),                     # no phrase: last number
    (" The answer is 71.", 0.0),
    (" I do not know.", 0.0),                                     # nothing to extract
    (" The answer is 72.0", 1.0),
])
def test_gsm8k_scoring(output, expected):
    if expected is None:
        assert oracle.score_gsm8k({"target": "1000"}, [output])["exact_match"] == 1.0
        return
    got = oracle.score_gsm8k({"target": "72"}, [output])
    assert got["exact_match"] == expected


def test_gsm8k_loader_and_prompt(eval_dir):
    spec = get_task("gsm8k")
    data = loaders.load_gsm8k(spec, eval_dir)
    assert len(data.items) == 1319 and data.items[0]["target"] == "18"
    prompt = oracle.prompt_gsm8k(data.items[0], [], spec.fewshot)
    assert prompt.startswith("Answer the following questions.\n\nQuestion: There are 15 trees")
    assert prompt.count("Question:") == 9 and prompt.endswith("\nAnswer:")
    assert prompt.count("The answer is") == 8


# ----------------------------------------------------------------------------- MATH
def test_math_scoring_and_missing_data(tmp_path, eval_dir):
    item = {"target": loaders.math_answer_from_solution("So $x = \\boxed{\\frac{1}{2}}$.")}
    assert item["target"] == "\\frac{1}{2}"
    ok = "We get $\\dfrac{1}{2}$.\nFinal Answer: The final answer is $\\frac{1}{2}$. I hope it is correct."
    assert oracle.score_math(item, [ok])["exact_match"] == 1.0
    assert oracle.score_math(item, ["so it is \\boxed{\\frac12}"])["exact_match"] == 0.0
    assert oracle.score_math(item, ["no idea"])["exact_match"] == 0.0
    assert oracle.score_math({"target": "5"}, ["Final Answer: The final answer is $5$. I hope it is correct."])[
        "exact_match"] == 1.0
    with pytest.raises(loaders.DataUnavailable, match="data not available"):
        loaders.load_math(get_task("math"), eval_dir)
    (tmp_path / "math").mkdir()
    (tmp_path / "math" / "test.jsonl").write_text('{"problem": "1+1?", "solution": "$\\\\boxed{2}$"}\n')
    data = loaders.load_math(get_task("math"), tmp_path)
    assert data.items[0]["target"] == "2"


# ----------------------------------------------------------------------------- BBH
def test_bbh_loader_skips_canary(eval_dir):
    spec = get_task("bbh")
    data = loaders.load_bbh(spec, eval_dir)
    assert len(data.fewshot) == 27 and len(data.items) == 6511
    prompt = data.fewshot["date_understanding"][0]["prompt"]
    assert "canary" not in prompt and "-----" not in prompt
    assert prompt.startswith("Infer the date from context.") and prompt.count("So the answer is") == 3
    item = next(it for it in data.items if it["group"] == "date_understanding")
    text = oracle.prompt_bbh(item, data.fewshot["date_understanding"], spec.fewshot)
    assert text.endswith("\n\nQ: " + item["input"] + "\nA:")


@pytest.mark.parametrize("output,target,expected", [
    (" Let's think step by step.\nBlah. So the answer is (B).", "(B)", 1.0),
    (" So the answer is B.", "(B)", 1.0),                 # option letter without parentheses
    (" So the answer is (C).", "(B)", 0.0),
    (" So the answer is Yes.", "yes", 1.0),              # case-insensitive
    (" So the answer is 3.5.", "3.5", 1.0),              # decimal point is not the sentence end
    (" I think (B) but who knows", "(B)", 0.0),          # badly formatted: no "the answer is"
    (" So the answer is ] ) }.", "] ) }", 1.0),          # dyck: punctuation answers stay intact
    (" So the answer is ).", "] ) }", 0.0),
])
def test_bbh_scoring(output, target, expected):
    assert oracle.score_bbh({"target": target}, [output])["exact_match"] == expected


# ----------------------------------------------------------------------------- HumanEval
def test_humaneval_scoring_runs_in_sandbox(eval_dir):
    spec = get_task("humaneval")
    data = loaders.load_humaneval(spec, eval_dir)
    assert len(data.items) == 164
    item = data.items[0]
    # The sandbox engine asks the backend for the problem's own prompt, with the task's stop sequences.
    backend = CannedBackend([item["problem"]["canonical_solution"]])
    records = run_sandbox_chunk(backend, spec, [item], samples=0, seed=0)
    assert [r.prompt for r in backend.requests] == [item["problem"]["prompt"]]
    assert backend.requests[0].stop == tuple(spec.stop) and backend.requests[0].temperature == 0
    assert records[item["id"]]["metrics"] == {"pass@1": 1.0}
    right = item["problem"]["canonical_solution"]
    wrong = "    return False\n"
    garbled = "    return (((\n"  # a syntax error
    got = score_humaneval(item, [right] + [right] * 3 + [wrong] * 8 + [garbled] * 9)
    assert got["pass@1"] == 1.0
    assert got["pass@10"] == pytest.approx(1 - math.comb(17, 10) / math.comb(20, 10))
    assert score_humaneval(item, [garbled])["pass@1"] == 0.0
    assert "pass@10" not in score_humaneval(item, [wrong])
