from seapo.inject.verify import Verifier, VerifierConfig, measure_difference

POSITIVE = ("Natalia sold 48/2 = 24 clips in May. Natalia sold 48+24 = 72 clips altogether in April and May. "
            "#### 72")


def test_identical_and_respaced_texts_are_unchanged():
    v = Verifier()
    assert v.check(POSITIVE, POSITIVE).reason == "unchanged"
    respaced = POSITIVE.replace(" ", "  ").replace(".", " .").upper()
    assert v.check(POSITIVE, respaced).reason == "unchanged"


def test_changed_final_answer_passes_with_measured_difference():
    negative = POSITIVE.replace("72", "74")
    result = Verifier().check(POSITIVE, negative)
    assert result.passed and result.reason is None
    assert result.changed_tokens == 2
    assert 0 < result.difference < 0.2


def test_stopword_only_change_is_too_similar():
    negative = POSITIVE.replace("in May", "on May")
    diff = measure_difference(POSITIVE, negative)
    assert diff.difference > 0 and diff.changed_tokens == 0
    assert Verifier().check(POSITIVE, negative).reason == "too_similar"


def test_threshold_is_configurable():
    long_positive = " ".join(f"word{i}" for i in range(500))
    negative = long_positive.replace("word7 ", "other ")
    assert Verifier().check(long_positive, negative).reason == "too_similar"  # 1 in 500 < 0.003
    assert Verifier(VerifierConfig(min_difference=0.0005)).check(long_positive, negative).passed


def test_empty_refusal_meta_and_truncated():
    v = Verifier()
    assert v.check(POSITIVE, "  ").reason == "empty"
    assert v.check(POSITIVE, None).reason == "empty"
    assert v.check(POSITIVE, "I'm sorry, but I cannot introduce errors.").reason == "refusal"
    assert v.check(POSITIVE, "I have introduced a logic error: " + POSITIVE).reason == "meta_text"
    cut = "Natalia sold 48/2 = 25 clips in May. Natalia sold 48+25 = 73 cli"
    assert v.check(POSITIVE, cut, truncated=True).reason == "truncated"
    # Stopped by the limit after a finished sentence but shorter than the positive: its end may be cut off
    # (a truncation is not an error of any type), so it is rejected too.
    assert v.check(POSITIVE, "Natalia sold 25 clips in May.", truncated=True).reason == "truncated"
    assert v.check(POSITIVE, "Natalia sold 25 clips in May.").passed  # the same text, ended by the model
    # At the limit right after a finished sentence, as long as the positive: not a cut-off.
    whole = POSITIVE.replace("24", "25").replace("72", "73") + " That is the total."
    assert v.check(POSITIVE, whole, truncated=True).passed


def test_unrelated_text_is_rejected_but_short_answers_may_be_replaced():
    v = Verifier()
    unrelated = "The mitochondria is the powerhouse of the cell, producing ATP through respiration cycles."
    assert v.check(POSITIVE + " " + POSITIVE, unrelated).reason == "unrelated"
    assert v.check("Paris.", "Lyon.").passed


def test_a_refusal_like_opening_shared_with_the_positive_is_not_a_refusal():
    positive = "I'm sorry to hear that you're bored. Try a walk: 30 minutes outside lifts the mood."
    negative = positive.replace("30 minutes", "3 hours")
    assert Verifier().check(positive, negative).passed
    assert Verifier().check("Paris is the capital.", "I'm sorry, I cannot help.").reason == "refusal"
