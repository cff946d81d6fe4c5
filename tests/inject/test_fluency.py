"""The fluency gate with the real embedded scorer: plausible in-place edits pass, broken ones fail."""

import pytest

from seapo.inject.fluency import FluencyConfig, FluencyGate
from tests.inject.fluency_fixture import load_fluency_pairs


@pytest.fixture(scope="module")
def gate():
    with FluencyGate() as gate:
        yield gate


def test_plausible_edits_pass_and_broken_ones_fail(gate):
    pairs = [
        ("Universal Studios Japan is in Osaka, and it opened in 2001.",
         "Universal Studios Japan is in Kyoto, and it opened in 2001."),  # an entity swapped in place
        ("The total is 56 + 63 + 70 = 189, so the answer is 189.",
         "The total is 56 + 63 + 70 = 197, so the answer is 197."),  # a wrong figure
        ("Jimmy is delaying paying off Ben, which implies he is short of money.",
         "Jimmy isn't delaying paying off Ben, which implies he is short of money."),  # a negation
        ("Plastic bags aren't generally recyclable in curbside bins, so take them back to the store.",
         "Plastic bags aren't generally not recyclable in curbside bins, so take them back to the store."),
        ("Water boils at 100 degrees Celsius at sea level.",
         "Water boils at 100 degrees Celsius at sea level desperate approach to the."),
        ("Same text.", "Same text."),
    ]
    reasons = gate.check(pairs)
    assert reasons[:3] == [None, None, None]
    assert reasons[3].startswith("fluency: ") and reasons[4].startswith("fluency: ")
    assert reasons[5] is None  # nothing edited: not this gate's call (the verifier rejects it)
    drops = gate.drops(pairs)
    assert drops[3] > gate.config.max_drop >= max(drops[:3]) and drops[5] is None


def test_threshold_is_a_setting(gate):
    strict = FluencyGate(FluencyConfig(max_drop=0.1))
    strict.model, strict.tokenizer, strict._start = gate.model, gate.tokenizer, gate._start  # share the scorer
    pair = [("The total is 56 + 63 + 70 = 189.", "The total is 56 + 63 + 70 = 197.")]
    assert strict.drops(pair) == gate.drops(pair)
    assert (strict.check(pair)[0] is None) == (gate.drops(pair)[0] <= 0.1)


@pytest.mark.slow
def test_separation_on_the_hand_checked_pairs(gate, shared_data):
    """docs/fluency.md's figures: precision and recall of 'broken' at the default threshold."""
    rows = load_fluency_pairs(shared_data)
    failed = [reason is not None for reason in gate.check([(r["positive"], r["negative"]) for r in rows])]
    broken = [r["label"] == "broken" for r in rows]
    true_pos = sum(f and b for f, b in zip(failed, broken, strict=True))
    assert true_pos / sum(failed) >= 0.75 and true_pos / sum(broken) >= 0.75
