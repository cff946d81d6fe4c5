"""``--engine lm-eval``: score log-likelihood tasks with lm-evaluation-harness itself.

lm-eval's own ``truthfulqa_mc1/mc2`` and ``mmlu_*`` tasks want Hub data sets. To run them
offline on exactly the items seapo selected, this module writes those items as local JSON
files and task YAMLs that copy lm-eval's prompt, choices and metric definitions (the MC2
metric is lm-eval's own ``process_results_mc2``), then runs ``lm_eval.simple_evaluate`` with
lm-eval's ``HFLM`` wrapping the already loaded model. Generation tasks are not routed here.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"truthfulqa_mc", "mmlu"}


def supports(spec) -> bool:
    return spec.name in SUPPORTED


def _lm_eval_task_dir() -> Path:
    import lm_eval

    return Path(lm_eval.__file__).parent / "tasks"


def _write_truthfulqa(items: list[dict], folder: Path) -> list[str]:
    data = folder / "truthfulqa.jsonl"
    with open(data, "w", encoding="utf-8") as f:
        for it in items:
            doc = {"question": it["question"],
                   "mc1_targets": {"choices": [it["best"]] + it["false"],
                                   "labels": [1] + [0] * len(it["false"])},
                   "mc2_targets": {"choices": it["true"] + it["false"],
                                   "labels": [1] * len(it["true"]) + [0] * len(it["false"])}}
            f.write(json.dumps(doc) + "\n")
    base = yaml.safe_load((_lm_eval_task_dir() / "truthfulqa" / "truthfulqa_mc1.yaml").read_text())
    base.update(dataset_path="json", dataset_kwargs={"data_files": {"validation": str(data)}}, tag=[])
    base.pop("dataset_name", None)
    mc1 = dict(base, task="seapo_truthfulqa_mc1")
    mc2 = dict(base, task="seapo_truthfulqa_mc2", doc_to_choice="{{mc2_targets.choices}}")
    (folder / "seapo_truthfulqa_mc1.yaml").write_text(yaml.safe_dump(mc1))
    # The MC2 metric is lm-eval's own function; YAML's !function tag must be written verbatim.
    (folder / "seapo_truthfulqa_mc2.yaml").write_text(
        yaml.safe_dump(mc2) + "process_results: !function seapo_lmeval_utils.process_results_mc2\n")
    (folder / "seapo_lmeval_utils.py").write_text(
        "from lm_eval.tasks.truthfulqa.utils import process_results_mc2  # noqa: F401\n")
    return ["seapo_truthfulqa_mc1", "seapo_truthfulqa_mc2"]


def _write_mmlu(items: list[dict], fewshot: dict[str, list[dict]], folder: Path, shots: int) -> list[str]:
    template = yaml.safe_load((_lm_eval_task_dir() / "mmlu" / "default" / "_default_template_yaml").read_text())
    names = []
    for subject in dict.fromkeys(it["group"] for it in items):
        files = {}
        for split, rows in (("test", [it for it in items if it["group"] == subject]),
                            ("dev", fewshot.get(subject, []))):
            path = folder / f"mmlu_{subject}_{split}.jsonl"
            with open(path, "w", encoding="utf-8") as f:
                for r in rows:
                    f.write(json.dumps({"question": r["question"], "choices": r["choices"], "answer": r["label"],
                                        "subject": subject}) + "\n")
            files[split] = str(path)
        task = dict(template, task=f"seapo_mmlu_{subject}", dataset_path="json",
                    dataset_kwargs={"data_files": files}, num_fewshot=shots,
                    description=f"The following are multiple choice questions (with answers) about "
                                f"{subject.replace('_', ' ')}.\n\n")
        (folder / f"seapo_mmlu_{subject}.yaml").write_text(yaml.safe_dump(task))
        names.append(task["task"])
    return names


def run_task(lm, spec, data, items: list[dict], config, progress) -> dict[str, dict[str, Any]]:
    """Per-item records (same layout as the native engine's) computed by lm-eval."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from seapo.evaluate.runner import _record

    bar = progress.add_task(f"{spec.name} (lm-eval)", total=len(items))
    with tempfile.TemporaryDirectory(prefix="seapo-lmeval-") as tmp:
        folder = Path(tmp)
        if spec.name == "truthfulqa_mc":
            tasks = _write_truthfulqa(items, folder)
        else:
            tasks = _write_mmlu(items, data.fewshot, folder, spec.fewshot)
        model = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=config.batch_size,
                     device=str(lm.model.device))
        out = lm_eval.simple_evaluate(model=model, tasks=tasks, task_manager=TaskManager(include_path=tmp),
                                      log_samples=True, bootstrap_iters=0, verbosity="WARNING")
    records: dict[str, dict[str, Any]] = {}
    if spec.name == "truthfulqa_mc":
        by_doc: dict[int, dict[str, float]] = {}
        for task, metric in (("seapo_truthfulqa_mc1", "mc1"), ("seapo_truthfulqa_mc2", "mc2")):
            for s in out["samples"][task]:
                by_doc.setdefault(int(s["doc_id"]), {})[metric] = float(s["acc"])
        for k, it in enumerate(items):
            records[it["id"]] = _record(it, by_doc[k])
    else:
        for subject_task in tasks:
            subject = subject_task.removeprefix("seapo_mmlu_")
            subject_items = [it for it in items if it["group"] == subject]
            for s in out["samples"][subject_task]:
                it = subject_items[int(s["doc_id"])]
                records[it["id"]] = _record(it, {"acc": float(s["acc"])})
    progress.update(bar, completed=len(items))
    return records
