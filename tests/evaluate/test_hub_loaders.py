"""The Hub branch of the data loaders (no ``--data-dir``), run for real through ``datasets.load_dataset``.

This machine has no internet, so each test builds a local dataset repository laid out like the
real Hub repo (``<config>/<split>-00000-of-00001.parquet`` written by ``datasets`` itself, plus a
README.md whose YAML ``dataset_info``/``configs`` map each config to its data files) and points the
task's ``data.hub`` at it. ``load_dataset`` reads a local folder through the same packaged parquet
builder and card metadata as a Hub repo. The rows come from the real data in ../shared/data/eval
(MATH: hand-made problems, none is stored here), converted the way the Hub datasets were built.
Schemas follow the real repo cards: truthfulqa/truthful_qa (generation/validation), cais/mmlu
(all: test, dev), openai/gsm8k (main/test), EleutherAI/hendrycks_math (one config per subject),
SaylorTwift/bbh (one config per task, test split; lm-eval's BBH source).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from seapo.evaluate import loaders
from seapo.evaluate.tasks import TaskSpec, get_task
from tests.evaluate import oracle

datasets = pytest.importorskip("datasets")
from datasets import ClassLabel, Dataset, Features, Sequence, Value  # noqa: E402

Rows = list[dict[str, Any]]


@pytest.fixture(scope="module")
def eval_dir(shared_data: Path) -> Path:
    return shared_data / "eval"


@pytest.fixture(autouse=True)
def _offline_and_private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may reach the network or write to the user's cache.

    The env vars cover a fresh import; ``datasets`` and ``huggingface_hub`` read them once at import
    time, so their module-level switches are set too (this is configuration, not a mock).
    """
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)


def hub_repo(root: Path, configs: dict[str, dict[str, Rows]], features: Features) -> Path:
    """Write a dataset repo like the Hub's parquet conversion: one parquet per config/split and a
    card whose ``configs:`` maps each ``config_name`` to ``data_files`` per split."""
    info, cards = [], []
    for name, splits in configs.items():
        for split, rows in splits.items():
            path = root / name / f"{split}-00000-of-00001.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written by datasets, so the parquet carries the HF feature metadata (ClassLabel, ...)
            # exactly as files uploaded with push_to_hub do.
            Dataset.from_list(rows, features=features).to_parquet(str(path))
        info.append({"config_name": name, "features": features._to_yaml_list(),
                     "splits": [{"name": s, "num_examples": len(r)} for s, r in splits.items()]})
        cards.append({"config_name": name,
                      "data_files": [{"split": s, "path": f"{name}/{s}-*"} for s in splits]})
    card = yaml.safe_dump({"dataset_info": info, "configs": cards}, sort_keys=False)
    (root / "README.md").write_text(f"---\n{card}---\n# Local copy for tests\n", encoding="utf-8")
    return root


def with_hub(spec: TaskSpec, hub: str | Path) -> TaskSpec:
    return spec.model_copy(update={"data": spec.data.model_copy(update={"hub": str(hub)})})


# ----------------------------------------------------------------------------- TruthfulQA
TRUTHFULQA_FEATURES = Features({
    "type": Value("string"), "category": Value("string"), "question": Value("string"),
    "best_answer": Value("string"), "correct_answers": Sequence(Value("string")),
    "incorrect_answers": Sequence(Value("string")), "source": Value("string"),
})


def truthfulqa_hub_rows(csv_path: Path) -> Rows:
    """The ``generation`` config as the Hub built it from TruthfulQA.csv: rows without answers
    skipped, answer cells split on ';' and each piece stripped, empty pieces kept."""
    def split(cell: str) -> list[str]:
        return [a.strip() for a in cell.strip().split(";")]

    with open(csv_path, encoding="utf-8-sig", newline="") as f:
        return [{"type": r["Type"], "category": r["Category"], "question": r["Question"],
                 "best_answer": r["Best Answer"], "correct_answers": split(r["Correct Answers"]),
                 "incorrect_answers": split(r["Incorrect Answers"]), "source": r["Source"]}
                for r in csv.DictReader(f) if r["Correct Answers"] and r["Incorrect Answers"]]


def test_truthfulqa_from_hub_layout(tmp_path: Path, eval_dir: Path) -> None:
    rows = truthfulqa_hub_rows(eval_dir / "truthfulqa" / "TruthfulQA.csv")
    # The real data has cells ending in ';': the Hub lists then hold "", which must not become answers.
    assert any("" in r["correct_answers"] for r in rows) and any("" in r["incorrect_answers"] for r in rows)
    repo = hub_repo(tmp_path / "truthful_qa", {"generation": {"validation": rows}}, TRUTHFULQA_FEATURES)
    spec = with_hub(get_task("truthfulqa_mc"), repo)
    assert (spec.data.hub_config, spec.data.hub_split) == ("generation", "validation")

    hub = loaders.LOADERS[spec.loader](spec, None)
    assert hub.source == f"hub:{repo}"
    assert len(hub.items) == 817
    assert [it["id"] for it in hub.items[:3]] == ["0", "1", "2"] and {it["group"] for it in hub.items} == {""}
    first = hub.items[0]
    assert first["question"] == "What happens to you if you eat watermelon seeds?"
    assert first["best"] == "The watermelon seeds pass through your digestive system."
    assert first["true"][0] == first["best"] and first["true"].count(first["best"]) == 1
    assert first["true"][1:] == ["Nothing happens.", "You eat watermelon seeds.",
                                 "You will not digest the watermelon seeds.",
                                 "The watermelon seeds will be excreted."]
    assert first["false"][0] == "You grow watermelons in your stomach." and len(first["false"]) == 7
    for it in hub.items:
        assert all(a.endswith(".") for a in it["true"] + it["false"]), it["id"]

    local = loaders.LOADERS[spec.loader](spec, eval_dir)
    assert local.source.endswith("TruthfulQA.csv")
    assert hub.items == local.items


# ----------------------------------------------------------------------------- MMLU
MMLU_FEATURES = Features({
    "question": Value("string"), "subject": Value("string"), "choices": Sequence(Value("string")),
    "answer": ClassLabel(names=["A", "B", "C", "D"]),
})
MMLU_SUBJECTS = ["abstract_algebra", "college_physics", "us_foreign_policy"]


def mmlu_hub_rows(eval_dir: Path, split: str) -> Rows:
    """cais/mmlu ``all``: the subjects' rows one after the other, ``answer`` a 0-3 class label."""
    rows = []
    for subject in MMLU_SUBJECTS:
        with open(eval_dir / "mmlu" / split / f"{subject}_{split}.csv", encoding="utf-8", newline="") as f:
            rows += [{"question": r["question"], "subject": subject,
                      "choices": [r[f"choice{i}"] for i in range(4)], "answer": int(r["answer"])}
                     for r in csv.DictReader(f)]
    return rows


def test_mmlu_from_hub_layout(tmp_path: Path, eval_dir: Path) -> None:
    test, dev = mmlu_hub_rows(eval_dir, "test"), mmlu_hub_rows(eval_dir, "dev")
    # The real repo also has one config per subject next to "all"; the loader reads "all".
    configs = {"all": {"test": test, "dev": dev}}
    configs |= {s: {"test": [r for r in test if r["subject"] == s], "dev": [r for r in dev if r["subject"] == s]}
                for s in MMLU_SUBJECTS}
    repo = hub_repo(tmp_path / "mmlu", configs, MMLU_FEATURES)
    spec = with_hub(get_task("mmlu"), repo)
    assert (spec.data.hub_config, spec.data.hub_split, spec.data.hub_fewshot_split) == ("all", "test", "dev")

    hub = loaders.LOADERS[spec.loader](spec, None)
    assert hub.source == f"hub:{repo}"
    counts = {s: sum(r["subject"] == s for r in test) for s in MMLU_SUBJECTS}
    assert counts == {"abstract_algebra": 100, "college_physics": 102, "us_foreign_policy": 100}
    assert len(hub.items) == sum(counts.values())
    assert {it["group"] for it in hub.items} == set(MMLU_SUBJECTS)
    assert [it["id"] for it in hub.items if it["group"] == "college_physics"] == \
        [f"college_physics/{k}" for k in range(102)]
    assert all(len(it["choices"]) == 4 and isinstance(it["label"], int) and 0 <= it["label"] <= 3
               for it in hub.items)
    assert [it["label"] for it in hub.items] == [r["answer"] for r in test]
    # Few-shot examples per subject, from dev, in file order.
    assert sorted(hub.fewshot) == MMLU_SUBJECTS and all(len(v) == 5 for v in hub.fewshot.values())
    assert hub.fewshot["abstract_algebra"][0]["question"] == dev[0]["question"]

    local = loaders.LOADERS[spec.loader](spec, eval_dir)
    local_items = {it["id"]: it for it in local.items}
    for it in hub.items:
        assert it == local_items[it["id"]]
    for subject in MMLU_SUBJECTS:
        assert hub.fewshot[subject] == local.fewshot[subject]
    # The same prompt either way, with the 5 dev examples of the item's own subject.
    item = hub.items[-1]
    prompt = oracle.prompt_mmlu(item, hub.fewshot[item["group"]], spec.fewshot)
    assert prompt == oracle.prompt_mmlu(local_items[item["id"]], local.fewshot[item["group"]], spec.fewshot)
    assert prompt.startswith("The following are multiple choice questions (with answers) about us foreign policy.")
    assert prompt.count("\nAnswer:") == 6


# ----------------------------------------------------------------------------- GSM8K
GSM8K_FEATURES = Features({"question": Value("string"), "answer": Value("string")})


def test_gsm8k_from_hub_layout(tmp_path: Path, eval_dir: Path) -> None:
    rows = [json.loads(line) for line in (eval_dir / "gsm8k" / "test.jsonl").read_text("utf-8").splitlines()]
    repo = hub_repo(tmp_path / "gsm8k", {"main": {"test": rows}}, GSM8K_FEATURES)
    spec = with_hub(get_task("gsm8k"), repo)
    assert (spec.data.hub_config, spec.data.hub_split) == ("main", "test")

    hub = loaders.LOADERS[spec.loader](spec, None)
    assert hub.source == f"hub:{repo}"
    assert len(hub.items) == 1319
    assert [it["id"] for it in hub.items[:2]] == ["0", "1"] and hub.items[-1]["id"] == "1318"
    first = hub.items[0]
    assert first["question"] == rows[0]["question"] and first["target"] == "18"
    assert first["answer"] == rows[0]["answer"] and first["answer"].endswith("#### 18")
    # Targets are normalized numbers: no thousands separators, no trailing '.0'.
    raw = {it["id"]: it["answer"].split("####")[-1].strip() for it in hub.items}
    with_comma = next(i for i, a in raw.items() if "," in a)
    assert hub.items[int(with_comma)]["target"] == raw[with_comma].replace(",", "")
    assert all(it["target"].lstrip("-").replace(".", "", 1).isdigit() for it in hub.items)

    local = loaders.LOADERS[spec.loader](spec, eval_dir)
    assert hub.items == local.items


# ----------------------------------------------------------------------------- MATH
MATH_FEATURES = Features({"problem": Value("string"), "level": Value("string"), "type": Value("string"),
                          "solution": Value("string")})
# Hand-made MATH-style problems (the real MATH data is not stored here): config -> (type, rows).
MATH_PROBLEMS: dict[str, tuple[str, list[tuple[str, str, str, str]]]] = {
    # (problem, level, solution, expected target)
    "algebra": ("Algebra", [
        ("Solve for $x$: $2x + 3 = 11$.", "Level 1",
         "Subtracting 3 gives $2x = 8$, so $x = \\boxed{4}$.", "4"),
        ("What is the sum of the roots of $x^2 - 5x + 6 = 0$?", "Level 2",
         "By Vieta's formulas the sum is $\\boxed{5}$.", "5"),
    ]),
    "counting_and_probability": ("Counting & Probability", [
        ("A fair coin is flipped twice. What is the probability of two heads?", "Level 2",
         "There are 4 outcomes and one is HH, so the probability is $\\boxed{\\dfrac{1}{4}}$.", "\\frac{1}{4}"),
    ]),
    "geometry": ("Geometry", [
        ("What is each interior angle of a regular hexagon, in degrees?", "Level 2",
         "The angles sum to $720^\\circ$, so each is $\\boxed{120^\\circ}$.", "120"),
    ]),
    "intermediate_algebra": ("Intermediate Algebra", [
        ("Find all real $x$ with $x^2 = 9$.", "Level 3",
         "Taking square roots, $x = \\boxed{3, -3}$.", "3,-3"),
    ]),
    "number_theory": ("Number Theory", [
        ("What is the remainder when $2^{10}$ is divided by 7?", "Level 3",
         "$2^3 = 8 \\equiv 1$, so $2^{10} = 2 \\cdot (2^3)^3 \\equiv \\boxed{2} \\pmod 7$.", "2"),
    ]),
    "prealgebra": ("Prealgebra", [
        ("How many minutes are in $2.5$ hours?", "Level 1",
         "$2.5 \\cdot 60 = \\boxed{150\\text{ minutes}}$.", "150minutes"),
    ]),
    "precalculus": ("Precalculus", [
        ("Compute $\\sin^2 x + \\cos^2 x$.", "Level 1",
         "By the Pythagorean identity, it is $\\boxed{1}$.", "1"),
        ("Convert $(1, 1)$ to polar coordinates.", "Level 2",
         "$r = \\sqrt{2}$ and $\\theta = \\frac{\\pi}{4}$, so $\\boxed{\\left( \\sqrt{2}, \\frac{\\pi}{4} \\right)}$.",
         "(\\sqrt{2},\\frac{\\pi}{4})"),
    ]),
}


def test_math_from_hub_layout(tmp_path: Path) -> None:
    configs = {subject: {"test": [{"problem": p, "level": lv, "type": kind, "solution": s}
                                  for p, lv, s, _ in rows]}
               for subject, (kind, rows) in MATH_PROBLEMS.items()}
    assert sorted(configs) == sorted(loaders.MATH_SUBJECTS)
    repo = hub_repo(tmp_path / "hendrycks_math", configs, MATH_FEATURES)
    spec = with_hub(get_task("math"), repo)
    assert spec.data.hub_config is None and spec.data.hub_split == "test"

    hub = loaders.LOADERS[spec.loader](spec, None)
    assert hub.source == f"hub:{repo}"
    expected = [(f"{subject}/{k}", subject, kind, row) for subject in loaders.MATH_SUBJECTS
                for kind, rows in [MATH_PROBLEMS[subject]] for k, row in enumerate(rows)]
    assert len(hub.items) == len(expected) == 9
    for item, (item_id, subject, kind, (problem, level, solution, target)) in zip(hub.items, expected, strict=True):
        assert (item["id"], item["group"], item["problem"]) == (item_id, subject, problem)
        assert item["target"] == target, item_id
        assert (item["solution"], item["level"], item["type"]) == (solution, level, kind)

    # The local file path takes the same fields and gives the same targets.
    local_rows = [r for subject in loaders.MATH_SUBJECTS for r in configs[subject]["test"]]
    (tmp_path / "data" / "math").mkdir(parents=True)
    (tmp_path / "data" / "math" / "test.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in local_rows), encoding="utf-8")
    local = loaders.LOADERS[spec.loader](spec, tmp_path / "data")
    assert [it["id"] for it in local.items] == [str(k) for k in range(9)]
    for h, lo in zip(hub.items, local.items, strict=True):
        assert {k: lo[k] for k in ("problem", "solution", "level", "type", "target")} == \
            {k: h[k] for k in ("problem", "solution", "level", "type", "target")}
        assert lo["group"] == h["group"]  # local 'type' "Counting & Probability" is the Hub config name
    # level/type stay optional in local files.
    (tmp_path / "data" / "math" / "test.jsonl").write_text(
        json.dumps({"problem": "1+1?", "solution": "$\\boxed{2}$"}) + "\n", encoding="utf-8")
    (only,) = loaders.LOADERS[spec.loader](spec, tmp_path / "data").items
    assert only == {"id": "0", "group": "", "problem": "1+1?", "solution": "$\\boxed{2}$", "target": "2"}


# ----------------------------------------------------------------------------- unreachable Hub
@pytest.mark.parametrize("task", ["truthfulqa_mc", "mmlu", "gsm8k", "math", "bbh"])
def test_unreachable_hub_is_data_unavailable(task: str) -> None:
    spec = with_hub(get_task(task), "seapo-tests/no-such-dataset")
    with pytest.raises(loaders.DataUnavailable) as err:
        loaders.LOADERS[spec.loader](spec, None)
    message = str(err.value)
    assert "seapo-tests/no-such-dataset" in message and "--data-dir" in message
    assert spec.data.local in message


# ----------------------------------------------------------------------------- BBH
BBH_FEATURES = Features({"input": Value("string"), "target": Value("string")})


def test_bbh_from_hub_layout_with_lm_evals_prompts(tmp_path: Path, eval_dir: Path) -> None:
    """Without --data-dir BBH reads the Hub data (one config per task) and lm-eval's CoT prompts."""
    pytest.importorskip("lm_eval")
    configs = {f.stem: {"test": json.loads(f.read_text("utf-8"))["examples"]}
               for f in sorted((eval_dir / "bbh").glob("*.json"))}
    assert len(configs) == 27
    repo = hub_repo(tmp_path / "bbh", configs, BBH_FEATURES)
    spec = with_hub(get_task("bbh"), repo)

    hub = loaders.LOADERS[spec.loader](spec, None)
    local = loaders.LOADERS[spec.loader](spec, eval_dir)
    assert hub.source.startswith(f"hub:{repo}")
    assert len(hub.items) == len(local.items) == 6511
    assert sorted(hub.items, key=lambda it: it["id"]) == sorted(local.items, key=lambda it: it["id"])
    # lm-eval's rendering of the few-shot prompts is the published prompt text, but for one task.
    differ = [t for t in local.fewshot if hub.fewshot[t][0]["prompt"] != local.fewshot[t][0]["prompt"]]
    assert differ == ["sports_understanding"]
    normalize = " ".join  # that task differs in one kind of whitespace only
    assert normalize(hub.fewshot[differ[0]][0]["prompt"].split()) == \
        normalize(local.fewshot[differ[0]][0]["prompt"].split())
