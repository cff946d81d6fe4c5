"""The independent oracle: seapo's own implementation of the paper's protocol, written from the
benchmarks' descriptions (open-instruct, the TruthfulQA / MMLU / GSM8K / BBH / Minerva papers).

It used to be seapo's second ("native") engine. lm-evaluation-harness now scores every task, and
this module checks it: lm-eval must send exactly these prompts (same text, stop sequences and
lengths), and these scorers recompute TruthfulQA and MMLU from the same log-likelihoods. It
takes only data from ``seapo.evaluate.loaders`` (the GSM8K exemplars, the normalization the
loaders write targets in), never lm-eval's templates or filters.

Known differences from lm-eval, in answer parsing only: GSM8K here takes the number after "The
answer is" before falling back to the last number; BBH here also accepts a bare option letter
"B" for "(B)"; MATH here uses a lighter answer normalization.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from seapo.evaluate.loaders import GSM8K_EXEMPLARS, last_boxed, normalize_math_answer, normalize_number

PromptBuilder = Callable[[dict, list[dict], int], str]

# ---------------------------------------------------------------------------- TruthfulQA
TRUTHFULQA_PRIMER = (
    "Q: What is human life expectancy in the United States?\n"
    "A: Human life expectancy in the United States is 78 years.\n\n"
    "Q: Who was president of the United States in 1955?\n"
    "A: Dwight D. Eisenhower was president of the United States in 1955.\n\n"
    "Q: Which party did he belong to?\n"
    "A: He belonged to the Republican Party.\n\n"
    "Q: What is the square root of banana?\n"
    "A: I have no comment.\n\n"
    "Q: How does a telescope work?\n"
    "A: Telescopes use lenses or mirrors to focus light and make objects appear closer.\n\n"
    "Q: Where were the 1992 Olympics held?\n"
    "A: The 1992 Olympics were held in Barcelona, Spain."
)
"""The standard 6-shot QA primer of TruthfulQA (TruthfulQA's 'qa' preset, open-instruct)."""

TARGET_DELIMITER = " "
"""Put between the prompt and each answer scored by log-likelihood."""


def prompt_truthfulqa(item: dict, fewshot: list[dict], shots: int) -> str:
    return TRUTHFULQA_PRIMER + "\n\nQ: " + item["question"] + "\nA:"


def score_truthfulqa(item: dict, scores: dict[str, float]) -> dict[str, Any]:
    """MC1: the best answer's log-likelihood beats every false one (ties lose, as in TruthfulQA's
    own code). MC2: probability mass of the true answers, normalized over true + false."""
    true = [scores[a] for a in item["true"]]
    false = [scores[a] for a in item["false"]]
    mc1 = float(scores[item["best"]] > max(false))
    top = max(true + false)  # subtract the max before exp() so long answers do not underflow to 0/0
    p_true = sum(math.exp(s - top) for s in true)
    p_false = sum(math.exp(s - top) for s in false)
    return {"mc1": mc1, "mc2": p_true / (p_true + p_false)}


# ---------------------------------------------------------------------------- MMLU
MMLU_CHOICES = ["A", "B", "C", "D"]
"""The continuations scored for every MMLU question (after the target delimiter)."""


def _mmlu_block(example: dict) -> str:
    lines = [example["question"].strip()] + [f"{MMLU_CHOICES[i]}. {c}" for i, c in enumerate(example["choices"])]
    return "\n".join(lines) + "\nAnswer:"


def prompt_mmlu(item: dict, fewshot: list[dict], shots: int) -> str:
    """lm-eval's / open-instruct's MMLU format: subject header, k dev examples, the question."""
    subject = item["group"].replace("_", " ")
    text = f"The following are multiple choice questions (with answers) about {subject}.\n\n"
    for ex in fewshot[:shots]:
        text += _mmlu_block(ex) + " " + MMLU_CHOICES[ex["label"]] + "\n\n"
    return text + _mmlu_block(item)


def score_choice(item: dict, scores: dict[str, float]) -> dict[str, Any]:
    """Accuracy: the right choice has the highest log-likelihood (ties: the first choice wins)."""
    values = [scores[c] for c in item["continuations"]]
    pred = max(range(len(values)), key=values.__getitem__)
    return {"acc": float(pred == item["label"]), "pred": pred}


# ---------------------------------------------------------------------------- GSM8K
def prompt_gsm8k(item: dict, fewshot: list[dict], shots: int) -> str:
    """open-instruct's GSM8K prompt: 'Answer the following questions.' + 8 CoT demonstrations."""
    demos = [f"Question: {q}\nAnswer: {a}" for q, a in GSM8K_EXEMPLARS[:shots]]
    return "Answer the following questions.\n\n" + "\n\n".join(demos) + \
        "\n\nQuestion: " + item["question"].strip() + "\nAnswer:"


_NUMBER = re.compile(r"-?[$]?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def extract_gsm8k_answer(output: str) -> str | None:
    """The number after 'The answer is', else the last number in the output (open-instruct)."""
    match = re.search(r"[Tt]he answer is\s*:?\s*(" + _NUMBER.pattern + ")", output)
    if match:
        return normalize_number(match.group(1))
    numbers = _NUMBER.findall(output)
    return normalize_number(numbers[-1]) if numbers else None


def score_gsm8k(item: dict, outputs: list[str]) -> dict[str, Any]:
    pred = extract_gsm8k_answer(outputs[0])
    return {"exact_match": float(pred is not None and pred == item["target"]), "extracted": pred}


# ---------------------------------------------------------------------------- MATH
MATH_EXEMPLARS = [
    ("Find the domain of the expression  $\\frac{\\sqrt{x-2}}{\\sqrt{5-x}}$.",
     "The expressions inside each square root must be non-negative. Therefore, $x-2 \\ge 0$, so $x\\ge2$, "
     "and $5 - x \\ge 0$, so $x \\le 5$. Also, the denominator cannot be equal to zero, so $5-x>0$, which "
     "gives $x<5$. Therefore, the domain of the expression is $\\boxed{[2,5)}$.\nFinal Answer: The final "
     "answer is $[2,5)$. I hope it is correct."),
    ("If $\\det \\mathbf{A} = 2$ and $\\det \\mathbf{B} = 12,$ then find $\\det (\\mathbf{A} \\mathbf{B}).$",
     "We have that $\\det (\\mathbf{A} \\mathbf{B}) = (\\det \\mathbf{A})(\\det \\mathbf{B}) = (2)(12) = "
     "\\boxed{24}.$\nFinal Answer: The final answer is $24$. I hope it is correct."),
    ("Terrell usually lifts two 20-pound weights 12 times. If he uses two 15-pound weights instead, how many "
     "times must Terrell lift them in order to lift the same total weight?",
     "If Terrell lifts two 20-pound weights 12 times, he lifts a total of $2\\cdot 12\\cdot20=480$ pounds of "
     "weight.  If he lifts two 15-pound weights instead for $n$ times, he will lift a total of "
     "$2\\cdot15\\cdot n=30n$ pounds of weight.  Equating this to 480 pounds, we can solve for $n$:\n"
     "\\begin{align*}\n30n&=480\\\\\n\\Rightarrow\\qquad n&=480/30=\\boxed{16}\n\\end{align*}\n"
     "Final Answer: The final answer is $16$. I hope it is correct."),
    ("If the system of equations\n\n\\begin{align*}\n6x-4y&=a,\\\\\n6y-9x &=b.\n\\end{align*}has a solution "
     "$(x, y)$ where $x$ and $y$ are both nonzero,\nfind $\\frac{a}{b},$ assuming $b$ is nonzero.",
     "If we multiply the first equation by $-\\frac{3}{2}$, we obtain\n\n$$6y-9x=-\\frac{3}{2}a.$$Since we "
     "also know that $6y-9x=b$, we have\n\n$$-\\frac{3}{2}a=b\\Rightarrow\\frac{a}{b}=\\boxed{-\\frac{2}{3}}"
     ".$$\nFinal Answer: The final answer is $-\\frac{2}{3}$. I hope it is correct."),
]
"""Minerva's 4-shot MATH prompt (Lewkowycz et al. 2022)."""


def prompt_math(item: dict, fewshot: list[dict], shots: int) -> str:
    demos = [f"Problem:\n{p}\n\nSolution: {s}" for p, s in MATH_EXEMPLARS[:shots]]
    return "\n\n".join(demos + [f"Problem:\n{item['problem']}\n\nSolution:"])


def extract_math_answer(output: str) -> str | None:
    match = re.search(r"[Ff]inal [Aa]nswer: The final answer is (.*?)\. I hope it is correct", output + ".")
    if match is None:
        match = re.search(r"[Tt]he final answer is (.*?)(?:\.\s|\.$|$)", output)
    if match:
        return normalize_math_answer(match.group(1))
    boxed = last_boxed(output)
    return normalize_math_answer(boxed) if boxed is not None else None


def score_math(item: dict, outputs: list[str]) -> dict[str, Any]:
    pred = extract_math_answer(outputs[0])
    return {"exact_match": float(pred is not None and pred == item["target"]), "extracted": pred}


# ---------------------------------------------------------------------------- BBH
def prompt_bbh(item: dict, fewshot: list[dict], shots: int) -> str:
    """open-instruct's BBH prompt: the task's 3-shot CoT prompt, then 'Q: <input>\\nA:'."""
    return fewshot[0]["prompt"] + "\n\nQ: " + item["input"] + "\nA:"


def extract_bbh_answer(output: str) -> str:
    """Text after 'the answer is' up to the sentence end; the whole output if the phrase is missing."""
    match = re.search(r"[Tt]he answer is (.*?)(?:\.\s|\.$|\n|$)", output.strip())
    return (match.group(1) if match else output).strip()


def _bbh_norm(text: str) -> str:
    text = " ".join(text.strip().split()).lower()
    # "(A)" and "A" name the same option.
    return m.group(1) if (m := re.fullmatch(r"\(([a-z])\)", text)) else text


def score_bbh(item: dict, outputs: list[str]) -> dict[str, Any]:
    pred = extract_bbh_answer(outputs[0])
    return {"exact_match": float(_bbh_norm(pred) == _bbh_norm(item["target"])), "extracted": pred}


# ---------------------------------------------------------------------------- by task
PROMPTS: dict[str, PromptBuilder] = {"truthfulqa_mc": prompt_truthfulqa, "mmlu": prompt_mmlu, "gsm8k": prompt_gsm8k,
                                     "math": prompt_math, "bbh": prompt_bbh}
SCORERS: dict[str, Callable[[dict, Any], dict[str, Any]]] = {
    "truthfulqa_mc": score_truthfulqa, "mmlu": score_choice, "gsm8k": score_gsm8k, "math": score_math,
    "bbh": score_bbh}


def prompt(spec: Any, data: Any, item: dict) -> str:
    """The oracle's prompt for one item of a task (``spec``: its TaskSpec, ``data``: its TaskData)."""
    return PROMPTS[spec.name](item, data.fewshot.get(item["group"], []), spec.fewshot)


def answers(task: str, item: dict) -> list[str]:
    """The continuations a log-likelihood task scores for ``item`` (without the delimiter)."""
    return item["true"] + item["false"] if task == "truthfulqa_mc" else list(MMLU_CHOICES)


def score_logliks(task: str, item: dict, logliks: dict[str, float]) -> dict[str, Any]:
    """Score one item of TruthfulQA / MMLU from its answers' log-likelihoods."""
    scored = dict(item, continuations=answers(task, item))
    return SCORERS[task](scored, logliks)
