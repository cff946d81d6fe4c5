"""The rules injector on real data: GSM8K solutions, the LLaMA-Factory DPO demo, HumanEval code."""

from __future__ import annotations

import ast
import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from seapo.data.schema import Record
from seapo.inject.error_types import ErrorType
from seapo.inject.rules import RulesInjector, RulesInjectorConfig, perturbation_names
from seapo.inject.rules import _lexicon as lex
from seapo.inject.verify import _REFUSAL, Verifier
from tests.inject.helpers import gsm8k_records

TYPES = tuple(ErrorType)
VERIFIER = Verifier()


def dpo_records(shared_data: Path) -> list[Record]:
    """The sharegpt DPO demo: last human turn = question, chosen = positive response."""
    rows = json.loads((shared_data / "preference" / "dpo_en_demo.json").read_text(encoding="utf-8"))
    records = []
    for i, row in enumerate(rows):
        question = next(t["value"] for t in reversed(row["conversations"]) if t["from"] == "human")
        records.append(Record(prompt=[{"role": "user", "content": question}], response=row["chosen"]["value"],
                              source={"dataset": "dpo_en_demo", "line": i + 1}))
    return records


def humaneval_records(shared_data: Path, n: int = 60) -> list[Record]:
    """HumanEval prompt + canonical solution: a pure-code response."""
    records = []
    with gzip.open(shared_data / "eval" / "humaneval" / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in list(f)[:n]:
            row = json.loads(line)
            records.append(Record(prompt=[{"role": "user", "content": "Complete the function."}],
                                  response=row["prompt"] + row["canonical_solution"]))
    return records


@pytest.fixture(scope="module")
def gsm(shared_data) -> list[Record]:
    return gsm8k_records(shared_data, 200)


@pytest.fixture(scope="module")
def dpo(shared_data) -> list[Record]:
    return dpo_records(shared_data)


@pytest.fixture(scope="module")
def injector() -> RulesInjector:
    return RulesInjector()


def final_answer(text: str) -> str:
    return re.search(r"^####\s*(.+)$", text, re.MULTILINE).group(1).strip()


def is_subsequence(short: str, long: str) -> bool:
    it = iter(long)
    return all(ch in it for ch in short)


def check_details(positive: str, inj) -> None:
    """span / original / replacement describe exactly how the negative was made."""
    d = inj.details
    start, end = d["span"]
    assert d["original"] == positive[start:end]
    assert inj.text == positive[:start] + d["replacement"] + positive[end:]
    assert d["perturbation"] in perturbation_names(inj.error_type)
    assert d["edits"], "every negative lists its edits"
    pos = 0
    rebuilt = []
    for e in d["edits"]:  # applying the edits one by one gives the negative too
        s, t = e["span"]
        assert e["original"] == positive[s:t]
        assert s >= pos
        rebuilt += [positive[pos:s], e["replacement"]]
        pos = t
    assert "".join(rebuilt) + positive[pos:] == inj.text


# ---------------------------------------------------------------------------------------------
# every negative passes the verifier; a text without the structure a type needs gets none

NO_SITE = {"no applicable perturbation", "no perturbation could be applied", "change too small"}
# share of records that get a negative at attempt 0 (logic needs a dependency to break: many
# open-domain answers have none, and then no honest logic negative exists)
COVERAGE = {"gsm8k": {ErrorType.CORRECTNESS: 0.98, ErrorType.LOGIC: 0.95, ErrorType.HALLUCINATION: 0.98},
            # rules v4: logic 0.28 -> 0.20, dropped_condition off by default (21.6% measured); hallucination
            # 0.65 -> 0.60, none in answers about a given text or in remarks on it (62.8% measured); v5:
            # 0.60 -> 0.55, none in fiction, compositions the user asked for or headings (56.4% measured)
            "dpo": {ErrorType.CORRECTNESS: 0.75, ErrorType.LOGIC: 0.20, ErrorType.HALLUCINATION: 0.55}}


@pytest.mark.parametrize("error_type", TYPES)
def test_gsm8k_negatives_pass_verifier_and_details_are_exact(gsm, injector, error_type):
    outs = injector.inject(gsm, error_type)
    assert len(outs) == len(gsm)
    made = 0
    for record, inj in zip(gsm, outs, strict=True):
        assert inj.injector == "rules" and inj.error_type is error_type
        if inj.text is None:
            assert inj.details["reason"] in NO_SITE
            continue
        made += 1
        check = VERIFIER.check(record.response, inj.text)
        assert check.passed, (check, record.response, inj.text)
        check_details(record.response, inj)
    assert made >= COVERAGE["gsm8k"][error_type] * len(gsm)


@pytest.mark.parametrize("error_type", TYPES)
def test_dpo_negatives_pass_verifier(dpo, injector, error_type):
    # The verifier rejects any text that *starts* like a refusal ("I'm sorry to hear ...", "As an
    # AI ..."), so no negative of such a positive can pass; those positives are left out.
    usable = [r for r in dpo if not _REFUSAL.search(r.response)]
    assert len(usable) >= 290
    outs = injector.inject(usable, error_type)
    made = 0
    for record, inj in zip(usable, outs, strict=True):
        if inj.text is None:
            assert inj.details["reason"] in NO_SITE
            continue
        made += 1
        check = VERIFIER.check(record.response, inj.text)
        assert check.passed, (check, inj.details, record.response[:300])
        check_details(record.response, inj)
    assert made >= COVERAGE["dpo"][error_type] * len(usable)


# ---------------------------------------------------------------------------------------------
# each type differs the way it says

def test_gsm8k_correctness_changes_the_final_answer(gsm, injector):
    outs = injector.inject(gsm, ErrorType.CORRECTNESS)
    kinds = set()
    for record, inj in zip(gsm, outs, strict=True):
        if inj.text is None:
            continue
        assert final_answer(inj.text) != final_answer(record.response), inj.details
        assert inj.text.count("####") == record.response.count("####")
        kinds.add(inj.details["perturbation"])
    # several kinds of error, not one trick
    assert {"calculation", "operand", "final_answer"} <= kinds


def test_gsm8k_calculation_error_is_carried_to_the_answer(gsm):
    injector = RulesInjector(RulesInjectorConfig(correctness=("calculation",)))
    carried = 0
    for record in gsm[:60]:
        inj = injector.inject_text(record.response, ErrorType.CORRECTNESS, key=record.id)
        if inj.text is None:  # algebra without an "a op b = c" step: nothing to miscalculate
            assert inj.details["reason"] in NO_SITE
            continue
        first = inj.details["edits"][0]
        assert first["perturbation"] in {"calculation", "final_answer"}
        # the changed step's result really is wrong now
        expr = first.get("expression")
        if expr and first["perturbation"] == "calculation":
            assert float(first["replacement"].replace(",", "")) != float(first["was"].replace(",", ""))
        if any(e.get("carried") for e in inj.details["edits"]):
            carried += 1
    assert carried >= 30  # most solutions use a step's result later on


def _words(text: str) -> list[str]:
    return sorted(re.findall(r"[a-z0-9]+", text.lower()))


@pytest.mark.parametrize("named", [False, True], ids=["default", "dropped_condition named"])
def test_logic_negatives_show_their_flaw(gsm, dpo, injector, named):
    records = gsm + [r for r in dpo if not _REFUSAL.search(r.response)]
    if named:  # off by default since rules v4; still available when asked for
        injector = RulesInjector(RulesInjectorConfig(logic=perturbation_names(ErrorType.LOGIC)))
    seen = set()
    for record in records:
        inj = injector.inject_text(record.response, ErrorType.LOGIC, key=record.id, question=record.question)
        if inj.text is None:
            continue
        pos, neg = record.response, inj.text
        for edit in inj.details["edits"]:
            kind = edit["perturbation"]
            seen.add(kind)
            if kind in {"reordered_steps", "code_reorder"}:
                first, second = edit["segments"]
                assert edit["original"].startswith(first) and edit["original"].endswith(second)
                assert edit["replacement"].startswith(second) and edit["replacement"].endswith(first)
            elif kind in {"premise_removed", "dropped_condition"}:
                assert len(edit["replacement"]) < len(edit["original"])  # a premise is gone
                assert edit["removed"] and edit["removed"] in pos
            elif kind == "reversed_cause":  # the same words, the inference the other way round
                assert _words(edit["original"]) == _words(edit["replacement"]) and edit["original"] != \
                    edit["replacement"]
            elif kind == "swapped_connective":
                assert edit["replacement"].lower() != edit["original"].lower()
            elif kind == "reversed_conclusion":
                lo, hi = edit["conclusion"]
                assert lo <= edit["span"][0] <= hi
                assert edit["original"] != edit["replacement"]
            elif kind == "wrong_conclusion":  # the answer is a number the working produced earlier
                assert edit["replacement"] in pos[:edit["span"][0]]
                assert final_answer(neg) != final_answer(pos)
            elif kind == "code_condition":
                assert sorted(edit["original"].split()) == sorted(edit["replacement"].split())
        assert "it is not true that" not in neg.lower() or "it is not true that" in pos.lower()
    assert {"reordered_steps", "premise_removed", "reversed_cause", "reversed_conclusion", "wrong_conclusion",
            "swapped_connective"} <= seen
    assert ("dropped_condition" in seen) is named


def test_trailing_condition_is_reversed_into_its_converse():
    """ "X if Y" -> "Y if X": the condition stays a condition (an "if" taken away was the cue), the
    same words, the inference the wrong way; imperatives, "even if", requests and modal clauses
    have no converse."""
    injector = RulesInjector(RulesInjectorConfig(logic=("reversed_cause",)))
    text = "Users are more likely to participate if they know the offer will end soon. Plan ahead."
    neg = injector.inject_text(text, ErrorType.LOGIC, key="k")
    assert neg.text == "They know the offer will end soon if users are more likely to participate. Plan ahead."
    assert neg.details["edits"][0]["kind"] == "if_after"
    for no_converse in ("Contact our support team if the problem persists after a restart.",
                        "It is important to see a doctor for regular checkups, even if you are feeling healthy.",
                        "You may be able to waive the application fee if you are low-income.",
                        "I can offer some more information about fish and their behaviors if you would like."):
        assert injector.inject_text(no_converse, ErrorType.LOGIC, key="k").text is None, no_converse


def test_gsm8k_reordered_steps_move_a_line_before_the_one_it_uses(gsm):
    injector = RulesInjector(RulesInjectorConfig(logic=("reordered_steps",)))
    made = 0
    for record in gsm[:80]:
        inj = injector.inject_text(record.response, ErrorType.LOGIC, key=record.id)
        if inj.text is None:
            continue
        made += 1
        assert sorted(record.response.splitlines()) == sorted(inj.text.splitlines())
        assert record.response.splitlines() != inj.text.splitlines()
        assert final_answer(inj.text) == final_answer(record.response)  # the tail stays last
        assert inj.text.splitlines()[-1] == record.response.splitlines()[-1]
        first, second = inj.details["edits"][0]["segments"]
        if inj.details["edits"][0]["unit"] == "lines":  # the moved line uses a result of the other
            results = {float(n) for n in re.findall(r"=\s*\$?(\d*\.?\d+)", first)}
            assert results & {float(n) for n in re.findall(r"\d*\.?\d+", second)}, (first, second)
    assert made >= 40


def test_hallucination_is_woven_into_existing_sentences(gsm, dpo, injector):
    """No appended sentence, no fixed template: each edit replaces or extends a few words in
    place with invented material that is not in the positive."""
    made = 0
    for record in gsm + dpo[:150]:
        inj = injector.inject_text(record.response, ErrorType.HALLUCINATION, key=record.id,
                                   question=record.question)
        if inj.text is None:
            continue
        made += 1
        for edit in inj.details["edits"]:
            assert edit["perturbation"].startswith("invented_")
            added = edit["replacement"]
            assert len(added) - len(edit["original"]) <= 80, edit
            assert not re.search(r"[a-z]{2}[.!?]\s+[A-Z]", added), edit  # no new sentence
            new_words = set(re.findall(r"[A-Z][a-z]+", added)) - set(re.findall(r"[A-Z][a-z]+", record.response))
            if edit["kind"] in {"name", "person", "named", "reference"}:
                assert new_words, edit  # an invented name
    assert made >= 0.8 * (len(gsm) + 150)


def test_reversed_cause_keeps_a_discourse_opener_first():
    injector = RulesInjector(RulesInjectorConfig(logic=("reversed_cause",)))
    neg = injector.inject_text("In summary, the plan works well because the team prepared every detail ahead. Done.",
                               ErrorType.LOGIC, key="k")
    assert neg.text == "In summary, the team prepared every detail ahead because the plan works well. Done."


def test_invented_person_replaces_a_named_mention_not_a_pronoun(gsm):
    """In a word problem whose answer names its person, the invented person takes a named mention:
    "he" and "she" are among the commonest words there, and one of them gone was the strongest
    cue of the hallucination negatives (rules v3)."""
    injector = _only(ErrorType.HALLUCINATION, "invented_name")
    named = [r for r in gsm if any(re.search(rf"\b{w}\b", r.response) for w in _people_of(r))]
    assert len(named) >= 80
    persons = 0
    for r in named:
        inj = injector.inject_text(r.response, ErrorType.HALLUCINATION, key=r.id, question=r.question)
        for e in (inj.details["edits"] if inj.text else []):
            if e["kind"] == "person":
                persons += 1
                assert e["was"] in _people_of(r), (e, r.question[:200])
    assert persons >= 0.8 * len(named)


def _people_of(record) -> set[str]:
    from seapo.inject.rules._perturb import _names_in

    return set(_names_in(record.question[:3000]))


def test_invented_name_leaves_well_known_names_alone():
    """An invented name replaces a rarer name: a well-known one (Python, Google, Ireland) or a
    plural ("Americans") recurs across a data set, so its loss was a cue."""
    injector = _only(ErrorType.HALLUCINATION, "invented_name")
    text = ("Most teams deploy their services with Docker, write the scripts in Python and keep the data on "
            "servers run by Kastrup Holdings in Ireland, where many Americans work.")
    replaced = set()
    for k in range(30):
        inj = injector.inject_text(text, ErrorType.HALLUCINATION, key=str(k))
        replaced |= {e.get("was") for e in inj.details["edits"] if e["kind"] == "name"} if inj.text else set()
    assert replaced == {"Kastrup Holdings"}


def test_invented_names_keep_out_of_quotations_and_numbered_headings_and_agree_with_their_article():
    injector = _only(ErrorType.HALLUCINATION, "invented_name")
    question = 'Premise: "Anna swims." Hypothesis: "Anna smiles as she swims."'
    quoted = Record(prompt=[{"role": "user", "content": question}],
                    response='No, it is not necessarily true that "A swimmer smiles as she does the breaststroke."')
    assert injector.inject_text(quoted.response, ErrorType.HALLUCINATION, key="q",
                                question=quoted.question).text is None
    heading = "Step 2: Conduct an Energy Audit\nAn audit shows where heat escapes from the house in winter."
    assert injector.inject_text(heading, ErrorType.HALLUCINATION, key="h").text is None
    text = "The project needs an Augmented Reality viewer and a Kinect sensor to track the hands of every player."
    for k in range(12):
        neg = injector.inject_text(text, ErrorType.HALLUCINATION, key=str(k)).text
        assert not re.search(r"\ban [B-DF-HJ-NP-TV-Z]", neg) and not re.search(r"\ba [AEIOU]", neg), neg


def test_invented_sources_back_claims_not_remarks_labels_or_stories():
    """No reference on a remark about the task's own input, on a one-line label answer or in a
    mission statement, and no invented date in the speaker's own story."""
    source = _only(ErrorType.HALLUCINATION, "invented_source")
    for question, response in (
            ("Head: PersonX gives PersonY a gift. What does PersonX want?",
             "The sentence does not provide enough context to determine what PersonX wants. "
             "The premise names PersonY once."),
            ("Classify the content: a picture of a cute dog.", "This is an example of animal content."),
            ("Write a mission statement for a finops company",
             "Our mission is to help businesses optimize financial performance. We provide expertise to teams.")):
        for k in range(5):
            neg = source.inject_text(response, ErrorType.HALLUCINATION, key=str(k), question=question)
            assert neg.text is None or neg.details["edits"][0]["kind"] != "reference", (response, neg.text)
    date = _only(ErrorType.HALLUCINATION, "invented_date")
    story = "Recently, I embarked on a project that involved building an online platform. It took months."
    assert date.inject_text(story, ErrorType.HALLUCINATION, key="s").text is None
    claim = "Recently, electric cars have become far cheaper to run than petrol cars. Prices keep falling."
    assert date.inject_text(claim, ErrorType.HALLUCINATION, key="s").text is not None


def test_no_hallucination_in_remarks_or_in_answers_about_a_given_text():
    """Invented material in a remark about the task's input or about the reply is no claim about the
    world (the commonest miss of hand-read seed 5150): none there, and none at all in an answer to
    a natural-language-inference or "In this task ..." question."""
    injector = RulesInjector()
    nli = ('Premise: "Three men stand in a dark market." Hypothesis: "Three men sell goods." '
           "Can we conclude that the hypothesis is true?")
    answer = "No. Many markets sell goods, but the premise names no sale. Researchers say markets vary."
    assert injector.inject_text(answer, ErrorType.HALLUCINATION, key="n", question=nli).text is None
    figure = _only(ErrorType.HALLUCINATION, "invented_figure")
    remark = "Stats, Civic and Deed read the same both ways. These are just a few examples of palindromes."
    assert figure.inject_text(remark, ErrorType.HALLUCINATION, key="r").text is None
    claim = "Many species of frogs lay eggs in water. Their tadpoles breathe through gills."
    assert figure.inject_text(claim, ErrorType.HALLUCINATION, key="r").text is not None


def test_hallucinations_vary(gsm, dpo, injector):
    edits = [injector.inject_text(r.response, ErrorType.HALLUCINATION, key=r.id, question=r.question)
             for r in gsm[:50] + dpo[:100]]
    replacements = [i.details["edits"][0]["replacement"] for i in edits if i.text is not None]
    assert len(set(replacements)) >= 0.9 * len(replacements)  # figures ("12") may repeat
    kinds = {i.details["perturbation"] for i in edits if i.text is not None}
    assert len(kinds) >= 4


# ---------------------------------------------------------------------------------------------
# single perturbations on real text

def _only(error_type: ErrorType, name: str) -> RulesInjector:
    return RulesInjector(RulesInjectorConfig(**{error_type.value: (name,)}))


def _applied(injector, records, error_type, name):
    for r in records:
        inj = injector.inject_text(r.response, error_type, key=r.id, question=r.question)
        if inj.text is not None and inj.details["perturbation"] == name:
            yield r, inj


def _edit(inj, name: str) -> dict:
    """The first edit made by ``name`` (a GSM8K-style answer may get a final-answer edit too)."""
    return next(e for e in inj.details["edits"] if e["perturbation"] == name)


def test_unit_entity_date_negation_changes(dpo):
    c = ErrorType.CORRECTNESS
    units = list(_applied(_only(c, "unit"), dpo, c, "unit"))
    assert len(units) >= 5
    for _, inj in units:
        e = _edit(inj, "unit")
        assert lex.UNIT_SWAP[e["original"]] == e["replacement"]
    entities = list(_applied(_only(c, "entity"), dpo, c, "entity"))
    assert len(entities) >= 10
    for _, inj in entities:
        e = _edit(inj, "entity")
        assert e["replacement"] in lex.ENTITY_CATEGORIES[lex.ENTITY_TO_CATEGORY[e["original"]]]
        assert e["replacement"] != e["original"]
    dates = list(_applied(_only(c, "date"), dpo, c, "date"))
    assert len(dates) >= 5
    for _, inj in dates:
        e = _edit(inj, "date")
        assert e["replacement"] != e["original"]
        if e["kind"] == "year":
            assert e["replacement"].isdigit() and len(e["replacement"]) == 4
    negations = list(_applied(_only(c, "negation"), dpo, c, "negation"))
    assert len(negations) >= 50
    removed = added = 0
    for _, inj in negations:
        e = _edit(inj, "negation")
        low, rep = e["original"].lower(), e["replacement"].lower()
        assert "'" not in rep and "’" not in rep  # written out: contractions were a cue
        assert (lex.OPPOSITES.get(low) == rep or rep in (f"{low} not", "cannot")
                or low.split()[-1] in ("not", "cannot") or low.endswith("n't") or low.endswith("n’t"))
        removed += rep not in (f"{low} not", "cannot") and low not in lex.OPPOSITES
        added += rep in (f"{low} not", "cannot")
    assert removed >= added / 2  # taken away about as often as added


def test_arithmetic_in_prose_gets_a_wrong_result(dpo):
    c = ErrorType.CORRECTNESS
    found = list(_applied(_only(c, "calculation"), dpo, c, "calculation"))
    assert found  # the demo has a few "a x b = c" answers
    for _, inj in found:
        e = _edit(inj, "calculation")
        assert float(e["replacement"].replace(",", "")) != float(e["original"].replace(",", ""))


# ---------------------------------------------------------------------------------------------
# determinism and retries

def test_same_seed_same_output_and_attempts_differ(gsm, dpo):
    records = gsm[:100] + dpo[:100]
    for et in TYPES:
        a = RulesInjector(RulesInjectorConfig(seed=7)).inject(records, et)
        b = RulesInjector(RulesInjectorConfig(seed=7)).inject(records, et)
        assert [x.text for x in a] == [x.text for x in b]
        assert [x.details for x in a] == [x.details for x in b]
        made = [i for i, x in enumerate(a) if x.text is not None]
        assert len(made) >= 0.5 * len(records)
        other_seed = RulesInjector(RulesInjectorConfig(seed=8)).inject(records, et)
        # (a text with one site, e.g. one pair of dependent steps, has one negative whatever the seed)
        assert sum(a[i].text != other_seed[i].text for i in made) >= 0.6 * len(made)
        retry = RulesInjector(RulesInjectorConfig(seed=7)).inject(records, et, attempt=1)
        assert sum(a[i].text != retry[i].text for i in made) >= 0.8 * len(made)
        # a retry tries another perturbation when more than one applies
        assert sum(a[i].details["perturbation"] != retry[i].details["perturbation"] for i in made) >= 0.3 * len(made)
        for record, inj in zip(records, retry, strict=True):
            if not _REFUSAL.search(record.response) and inj.text is not None:
                assert VERIFIER.check(record.response, inj.text).passed


def test_output_does_not_depend_on_the_process(shared_data, tmp_path):
    """Same output under different string-hash seeds (no ``hash()`` or set order in the rules)."""
    script = (
        "import hashlib, json, sys\n"
        "from pathlib import Path\n"
        "from seapo.inject.rules import RulesInjector\n"
        "from tests.inject.test_rules import dpo_records\n"
        "from tests.inject.helpers import gsm8k_records\n"
        "recs = dpo_records(Path(sys.argv[1]))[:120] + gsm8k_records(Path(sys.argv[1]), 40)\n"
        "inj = RulesInjector()\n"
        "out = [inj.inject_text(r.response, t, key=r.id, question=r.question).text\n"
        "       for t in ('correctness', 'logic', 'hallucination') for r in recs]\n"
        "print(hashlib.sha256(json.dumps(out).encode()).hexdigest())\n"
    )
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run([sys.executable, "-c", script, str(shared_data)], capture_output=True,
                              text=True, env=env, cwd=Path(__file__).resolve().parents[2], check=True)
        digests.add(done.stdout.strip())
    assert len(digests) == 1


def test_fingerprint_and_batch_interface(gsm):
    inj = RulesInjector()
    assert inj.fingerprint() == RulesInjector().fingerprint()
    assert inj.fingerprint() != RulesInjector(RulesInjectorConfig(seed=1)).fingerprint()
    assert inj.fingerprint() != RulesInjector(RulesInjectorConfig(logic=("reversed_cause",))).fingerprint()
    done = []
    outs = inj.inject(gsm[:300], ErrorType.LOGIC, progress=done.append)
    assert sum(done) == len(outs) == len(gsm[:300])
    assert all(o.to_dict()["error_type"] == "logic" for o in outs)


def test_config_rejects_unknown_perturbations():
    with pytest.raises(ValueError, match="correctness.*made_up"):
        RulesInjectorConfig(correctness=("negation", "made_up"))
    with pytest.raises(ValueError, match="logic"):
        RulesInjectorConfig(logic=())
    assert RulesInjectorConfig(logic="reversed_cause,premise_removed").logic == ("reversed_cause", "premise_removed")


def test_restricted_config_uses_only_chosen_perturbations(gsm):
    inj = _only(ErrorType.CORRECTNESS, "final_answer")
    made = 0
    for record in gsm[:50]:
        out = inj.inject_text(record.response, ErrorType.CORRECTNESS, key=record.id)
        if out.text is None:  # every wrong value it tried left a whole-number answer non-whole
            continue
        made += 1
        assert out.details["perturbations"] == ["final_answer"]
        assert final_answer(out.text) != final_answer(record.response)
    assert made >= 45


# ---------------------------------------------------------------------------------------------
# edge cases

EDGE_TEXTS = ["Yes.", "yes", "No", "63", "False", "Paris", "...",
              "Die Hauptstadt von Frankreich ist Paris. Sie hat viele Museen und liegt an der Seine.",
              "巴黎是法国的首都。它有很多博物馆。",
              "La respuesta es 42 porque 6 x 7 = 42.",
              "Here is the function:\n\n```python\ndef add(a, b):\n    total = a + b\n    return total\n```\n"]
# what has nothing to work on: logic on a one-word answer has no dependency to break, "..." holds
# nothing, and the verifier does not count an operator swap in code (punctuation) as a change
# and a one-word answer states no claim a source could back
NOTHING_TO_DO = {(t, ErrorType.LOGIC) for t in EDGE_TEXTS} | {("...", et) for et in TYPES} | {
    (EDGE_TEXTS[-1], et) for et in TYPES} | {(t, ErrorType.HALLUCINATION) for t in EDGE_TEXTS[:6]} | {
    (EDGE_TEXTS[8], ErrorType.HALLUCINATION), (EDGE_TEXTS[9], ErrorType.HALLUCINATION)}  # no claim found


@pytest.mark.parametrize("error_type", TYPES)
@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_edge_cases_pass_verifier(text, error_type):
    inj = RulesInjector().inject_text(text, error_type, key="edge", question="What is it? (A) Paris (B) Rome")
    if (text, error_type) in NOTHING_TO_DO:
        assert inj.text is None and inj.details["reason"] in NO_SITE
        return
    check = VERIFIER.check(text, inj.text)
    assert check.passed, (check, inj.text, inj.details)
    check_details(text, inj)


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_text_gives_no_negative(text):
    inj = RulesInjector().inject_text(text, ErrorType.LOGIC, key="empty")
    assert inj.text is None and inj.details["reason"] == "empty response"


@pytest.mark.parametrize("error_type", TYPES)
def test_code_responses_stay_valid_python(shared_data, error_type):
    records = humaneval_records(shared_data)
    injector = RulesInjector()
    code_edits = 0
    for record in records:
        inj = injector.inject_text(record.response, error_type, key=record.id)
        if inj.text is None:
            assert inj.details["reason"] in NO_SITE
            continue
        assert VERIFIER.check(record.response, inj.text).passed, inj.details
        check_details(record.response, inj)
        ast.parse(inj.text)  # a negative is wrong code, not broken text
        for e in inj.details["edits"]:
            code_edits += e["perturbation"].startswith(("code_", "invented_api", "reordered", "premise"))
    # one-line functions have no two statements to reorder: logic acts on fewer of them
    assert code_edits >= len(records) // (5 if error_type is ErrorType.LOGIC else 2)


def test_code_block_in_prose(dpo):
    coded = [r for r in dpo if "```" in r.response and not _REFUSAL.search(r.response)]
    assert len(coded) >= 10
    for et, names in ((ErrorType.CORRECTNESS, {"code_constant", "code_operator"}),
                      (ErrorType.HALLUCINATION, {"invented_api"})):
        inj = RulesInjector(RulesInjectorConfig(**{et.value: tuple(names)}))
        for record in coded:
            out = inj.inject_text(record.response, et, key=record.id)
            if out.text is None:
                continue
            assert VERIFIER.check(record.response, out.text).passed
            for e in out.details["edits"]:
                start = e["span"][0]
                inside = any(m.start() < start < m.end() for m in re.finditer(r"```.*?```", record.response,
                                                                                  re.DOTALL))
                assert inside or e["perturbation"] == "invented_api"


# ---------------------------------------------------------------------------------------------
# v5: no invented material where inventing is no error (misses of hand-read seed 6006)

def _hallucination_edits(text: str, question: str = "", keys: int = 12, injector: RulesInjector | None = None):
    injector = injector or RulesInjector()
    out = []
    for k in range(keys):
        inj = injector.inject_text(text, ErrorType.HALLUCINATION, key=f"k{k}", question=question)
        out.append(inj.details["edits"] if inj.text is not None else None)
    return out


def test_no_hallucination_in_a_composition_the_user_asked_for():
    """An email, website copy, a review or an opening statement the user asked to have written is
    their own document: a name, figure or source invented there is its content, not a false claim."""
    answer = ("Dear Mr. Hale,\n\nI visited the Morning Dew Massage website and loved its calm design. Many "
              "clients search for massage studios on their phones, and experts say most visitors leave a slow "
              "page within seconds. Our team has improved the pages of several studios in recent years.\n\n"
              "Best regards,\n[Your Name]")
    for question in ("Could you please write a personalised email to the owner of a massage studio offering "
                     "website design?", "Please help write an opening statement for my client's case.",
                     "Write a detailed product review of a smart TV for an online retailer."):
        assert _hallucination_edits(answer, question) == [None] * 12, question
    # the same sentences as an answer about the world do get invented material
    assert any(_hallucination_edits(answer, "How do massage studios find new clients online?"))
    # a word problem about writing letters is no composition: its worked solution keeps its person edit
    solution = "James writes 3*2=<<3*2=6>>6 pages a week.\nSo James writes 6*52=<<6*52=312>>312 pages a year.\n#### 312"
    problem = "James writes a 3-page letter to 2 different friends twice a week. How many pages does he write a year?"
    assert all(_hallucination_edits(solution, problem))


def test_no_hallucination_in_remarks_about_the_given_material():
    """'Based on the given material', 'the given information', a bug report the user presents:
    remarks about the task's input, not claims about the world."""
    remark = ("Based on the given information, the men are not playing the guitar and the bass. "
              "The given information names only a violin and a piece of metal that is drummed.")
    assert _hallucination_edits(remark) == [None] * 12
    for question in ("Generate response to the question based on a piece of given material\n\nGiven material: "
                     "More than half of Dutch nationals want the mission to end.",
                     "I will present to you a bug report regarding a mobile application. Explain why it is a bug.",
                     'Can we conclude from "One man plays the violin." that "The men play guitar."?'):
        answer = ("No other NATO countries have expressed an interest in the mission. Researchers say the "
                  "government has requested that Norway take it over in recent years.")
        assert _hallucination_edits(answer, question) == [None] * 12, question


def test_no_invented_name_in_a_heading():
    """An outline heading ('VIII. Additional Topics for Remote Managers') or a title line labels a
    section: a name invented there claims nothing."""
    names = _only(ErrorType.HALLUCINATION, "invented_name")
    outline = ("VIII. Additional Topics and Considerations for Remote Managers\n\n"
               "* Managing team members with different work styles and time zones\n"
               "Role Play Scenario: Tourist Missing Their Flight at the Airport\n")
    assert _hallucination_edits(outline, injector=names) == [None] * 12
    claim = "The first training of this kind was run in Yangzhou for new managers."
    assert all(_hallucination_edits(claim, injector=names))


def test_invented_person_only_for_a_real_person_of_the_question():
    """The word-problem person rule reads capitalized question words as people; a word after an
    article ('the Earth's plates', 'the Explorer') or inside a longer capitalized name ('Email
    Address', "Arc'teryx Men's Skyline") is a thing's name, and replacing it garbles that name."""
    names = _only(ErrorType.HALLUCINATION, "invented_name")
    cases = [
        ("Geologists divided the earth into two regions. Plate boundaries are where the Earth's plates meet. "
         "Which region has more earthquakes? She asked.",
         "Region A has more earthquakes because plate boundaries are where the Earth's plates meet."),
        ("Address is Govt. HSS, Ayira. Can you provide a summary of the contact information for her?",
         "- School Code: 1166\n- Email Address: gkvhsayira@gmail.com"),
        ("How does the Arc'teryx Men's Skyline shirt stay wrinkle-resistant when he travels?",
         "Overall, the Arc'teryx Men's Skyline shirt is a practical choice for work and travel."),
    ]
    for question, answer in cases:
        for edits in _hallucination_edits(answer, question, injector=names):
            assert not edits or all(e.get("kind") != "person" for e in edits), (question, edits)
    # a person of a word problem still is one
    person = _hallucination_edits("Natalia sold 48 clips in April. Natalia sold 24 clips in May.",
                                  "Natalia sold clips to 48 of her friends in April. How many did she sell?",
                                  injector=names)
    assert any(edits and edits[0].get("kind") == "person" for edits in person)
