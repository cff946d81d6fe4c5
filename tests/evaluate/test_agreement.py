"""TruthfulQA MC1/MC2 and MMLU scores of the embedded model agree with an independent computation.

The reference below shares no code with seapo.evaluate (nor with the oracle): it reads the CSVs with ``csv``, renders
lm-eval's own prompt templates with jinja2, and sums answer-token log-probs from plain
``transformers`` forward passes (float32 on both sides, so the only differences are in how
the numbers are computed, not in rounding).
"""

from __future__ import annotations

import copy
import csv
import math
from pathlib import Path

import jinja2
import pytest
import torch
import yaml

from seapo.evaluate.runner import evaluate
from tests.evaluate.helpers import eval_config

N_TRUTHFULQA = 24
MMLU_SUBJECTS = ["abstract_algebra", "high_school_geography"]
N_MMLU = 5


@pytest.fixture(scope="module")
def reference_model(embedded_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machine is shared: spinning OpenMP threads are much slower
    tok = AutoTokenizer.from_pretrained(embedded_model)
    model = AutoModelForCausalLM.from_pretrained(embedded_model, dtype=torch.float32).eval()
    yield tok, model
    torch.set_num_threads(threads)


def _lm_eval_tasks() -> Path:
    lm_eval = pytest.importorskip("lm_eval")
    return Path(lm_eval.__file__).parent / "tasks"


def _period(a: str) -> str:
    a = a.strip()
    return a if a.endswith(".") else a + "."


def reference_truthfulqa(tok, model, csv_path: Path, n: int) -> tuple[float, float]:
    template = jinja2.Template(yaml.safe_load((_lm_eval_tasks() / "truthfulqa" / "truthfulqa_mc1.yaml")
                                              .read_text())["doc_to_text"])
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:n]
    questions = []
    for r in rows:
        best = _period(r["Best Answer"])
        true = [best] + [a for a in (_period(x) for x in r["Correct Answers"].split(";") if x.strip()) if a != best]
        false = [_period(x) for x in r["Incorrect Answers"].split(";") if x.strip()]
        questions.append((template.render(question=r["Question"].strip()), best, true, false))
    # Every prompt starts with the same 6-shot primer: run its tokens once, reuse the KV cache.
    contexts = [tok(q[0])["input_ids"] for q in questions]
    shared = 0
    while all(len(c) > shared + 1 and c[shared] == contexts[0][shared] for c in contexts):
        shared += 1
    with torch.no_grad():
        primer = model(torch.tensor([contexts[0][:shared]]), use_cache=True).past_key_values
    mc1, mc2 = [], []
    for (context, best, true, false), ctx in zip(questions, contexts, strict=True):
        answers = list(dict.fromkeys(true + false))
        seqs, conts = [], []
        for a in answers:
            whole = tok(context + " " + a)["input_ids"]
            assert whole[:len(ctx)] == ctx
            seqs.append(whole[shared:])
            conts.append(whole[len(ctx):])
        width = max(map(len, seqs))
        ids = torch.tensor([s + [tok.eos_token_id] * (width - len(s)) for s in seqs])
        past = copy.deepcopy(primer)
        past.batch_repeat_interleave(len(seqs))
        with torch.no_grad():
            logits = model(ids, past_key_values=past,
                           attention_mask=torch.ones(len(seqs), shared + width, dtype=torch.long)).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        score = {}
        for k, (a, cont) in enumerate(zip(answers, conts, strict=True)):
            first = len(ctx) - shared  # position of the first answer token within the row
            score[a] = sum(float(logprobs[k, first - 1 + j, t]) for j, t in enumerate(cont))
        mc1.append(float(score[best] > max(score[a] for a in false)))
        p_true = sum(math.exp(score[a]) for a in true)
        p_all = p_true + sum(math.exp(score[a]) for a in false)
        mc2.append(p_true / p_all)
    return sum(mc1) / len(mc1), sum(mc2) / len(mc2)


def reference_mmlu(tok, model, mmlu_dir: Path, subjects: list[str], n: int) -> float:
    template = yaml.safe_load((_lm_eval_tasks() / "mmlu" / "default" / "_default_template_yaml").read_text())
    doc_to_text = jinja2.Template(template["doc_to_text"])
    letters = ["A", "B", "C", "D"]
    letter_ids = [tok(" " + x)["input_ids"][-1] for x in letters]

    def read(path):
        with open(path, newline="", encoding="utf-8") as f:
            return [{"question": r["question"], "choices": [r[f"choice{i}"] for i in range(4)],
                     "answer": int(r["answer"])} for r in csv.DictReader(f)]

    accs = []
    for subject in subjects:
        dev = read(mmlu_dir / "dev" / f"{subject}_dev.csv")[:5]
        test = read(mmlu_dir / "test" / f"{subject}_test.csv")[:n]
        header = f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"
        shots = "".join(doc_to_text.render(**d) + " " + letters[d["answer"]] + "\n\n" for d in dev)
        correct = 0
        for d in test:
            ids = tok(header + shots + doc_to_text.render(**d))["input_ids"]
            with torch.no_grad():
                last = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1].float(), dim=-1)
            correct += int(max(range(4), key=lambda i: float(last[letter_ids[i]])) == d["answer"])
        accs.append(correct / len(test))
    return sum(accs) / len(accs)


@pytest.fixture(scope="module")
def reference_scores(reference_model, shared_data) -> dict[str, float]:
    tok, model = reference_model
    eval_dir = shared_data / "eval"
    mc1, mc2 = reference_truthfulqa(tok, model, eval_dir / "truthfulqa" / "TruthfulQA.csv", N_TRUTHFULQA)
    return {"mc1": mc1, "mc2": mc2, "acc": reference_mmlu(tok, model, eval_dir / "mmlu", MMLU_SUBJECTS, N_MMLU)}


def test_truthfulqa_and_mmlu_agree_with_independent_computation(reference_scores, embedded_model, shared_data,
                                                               tmp_path):
    """The one engine -- lm-eval's tasks and metrics over seapo's scorer -- against the reference."""
    pytest.importorskip("lm_eval")
    common = dict(data_dir=str(shared_data / "eval"), out=str(tmp_path), dtype="fp32", threads=1, batch_size=16)
    tqa = evaluate("embedded", eval_config(tasks=["truthfulqa_mc"], limit=N_TRUTHFULQA, **common))
    mmlu = evaluate("embedded", eval_config(tasks=[f"mmlu:{s}" for s in MMLU_SUBJECTS], limit=N_MMLU, **common))
    assert tqa.tasks["truthfulqa_mc"].settings["engine"] == mmlu.tasks["mmlu"].settings["engine"] == "lm-eval"

    got = {**tqa.tasks["truthfulqa_mc"].metrics, **mmlu.tasks["mmlu"].metrics}
    for metric in ("mc1", "mc2", "acc"):
        assert abs(100 * got[metric] - 100 * reference_scores[metric]) <= 0.5, (metric, got, reference_scores)
    # The scores are informative, not degenerate: a real model is above chance on MC2.
    assert 0.2 < reference_scores["mc2"] < 0.8
