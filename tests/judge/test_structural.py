"""The structural edit checks: which edits provably add no error, and what the others changed."""

from __future__ import annotations

import json

import pytest

from seapo.judge.structural import analyze

REF = ("Paris is the capital of France. It is not a small city: it has 2,100,000 people. "
       "Because of its museums, it draws more visitors than any other city in Europe.")


@pytest.mark.parametrize(("response", "kind"), [
    (REF, "identical"),
    ("Paris is the capital of France. It is not a small city: it has 2,100,000 people.", "truncation"),
    ("Paris is the capital of France. It is not a small city: it has 2,100,000 peo", "truncation"),
    ("Paris is the capital of France. Because of its museums, it draws more visitors than any other "
     "city in Europe.", "deletion"),
    ("Paris is the capital of France! It is not a small city; it has 2100000 people. Because of its "
     "museums, it draws more visitors than any other city in Europe.", "rewording"),
    ("Paris is really the capital of France. It is not a small city: it has 2,100,000 people. "
     "Because of its museums, it draws more visitors than any other city in Europe.", "rewording"),
])
def test_edits_that_add_no_error(response: str, kind: str) -> None:
    edit = analyze(REF, response)
    assert edit.kind == kind
    assert edit.no_error


@pytest.mark.parametrize(("response", "what"), [
    # a deletion that flips the claim is not a harmless deletion
    (REF.replace("It is not a small", "It is a small"), "short deleted run removed not"),
    (REF.replace("more visitors than any other city", "visitors than any other city"), "removed more"),
    (REF.replace("2,100,000", "3,100,000"), "numbers changed"),
    (REF.replace("Paris is", "Lyon is"), "entities added (lyon)"),
    (REF.replace("It is not a small", "It is never a small"), "negation flipped"),
    (REF.replace("more visitors", "fewer visitors"), "comparison/quantifier words changed"),
    (REF.replace("Because of", "Despite"), "claim words changed"),
    (REF.replace("small city", "small reptile"), "new words (reptile)"),
    (REF + " A 2019 survey by the Lumen Institute ranked it first for bakeries worldwide.", "inserted"),
    (REF.replace(" That said,", "") + " That said, it is indeed a small city.", "inserted"),
    ("It is not a small city: it has 2,100,000 people. Paris is the capital of France. Because of its "
     "museums, it draws more visitors than any other city in Europe.", "order changed"),
])
def test_edits_that_may_be_errors_stay_undecided(response: str, what: str) -> None:
    edit = analyze(REF, response)
    assert edit.kind == "content"
    assert not edit.no_error
    assert what in edit.describe()


def test_yes_no_swap_is_a_flip_even_when_the_negation_count_is_kept() -> None:
    ref = "Yes. The sentence does not contain a negation."
    edit = analyze(ref, "No. The sentence does indeed contain a negation.")
    assert edit.kind == "content" and edit.negation_changed


def test_restated_question_asserts_nothing() -> None:
    question = "How many apples does Tom have if he buys 3 bags of 4 apples?"
    edit = analyze("Tom has 3 * 4 = 12 apples.\n#### 12", "How many apples does Tom have if he buys 3 bags of 4 "
                   "apples?", question)
    assert edit.kind == "restated_question" and edit.no_error


def test_a_swap_between_options_listed_in_the_question_is_not_a_restatement() -> None:
    question = "Is climbing harder or easier than walking? Options: harder, easier"
    edit = analyze("Climbing is harder than walking.", "Climbing is easier than walking.", question)
    assert edit.kind == "content" and "easier" in edit.new_words


def test_deleting_whole_sentences_of_a_real_gsm8k_solution_is_deletion_only(shared_data) -> None:
    with open(shared_data / "source/gsm8k/train.jsonl", encoding="utf-8") as f:
        rows = [json.loads(next(f)) for _ in range(50)]
    checked = 0
    for row in rows:
        lines = row["answer"].split("\n")
        if len(lines) < 3:
            continue
        shortened = "\n".join(lines[:1] + lines[2:])  # one worked line dropped
        edit = analyze(row["answer"], shortened)
        # a dropped line is long (not inside a sentence) unless it is a short numeric line
        assert edit.kind in ("deletion", "content"), edit
        if edit.kind == "content":
            assert edit.critical_deletion
        checked += 1
        assert analyze(row["answer"], "\n".join(lines[:-1])).kind == "truncation"
    assert checked >= 30


def test_a_substitution_that_drops_content_for_a_neutral_word_is_not_a_rewording() -> None:
    edit = analyze("The enchanted forests are travel destinations.", "following.")
    assert edit.kind == "content" and edit.replaced_words


def test_number_written_differently_is_not_a_change() -> None:
    assert analyze("It costs $1,000 in total.", "It costs $1000 in total.").kind == "rewording"
