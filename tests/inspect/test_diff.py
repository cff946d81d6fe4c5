"""The word diff the inspector shows: exact (the edits rebuild the negative) and word-sized."""

import random

from seapo.inspect.data import apply_edits, word_edits


def test_edits_rebuild_the_negative_exactly():
    rng = random.Random(0)
    alphabet = "ab .,\n12é"
    for _ in range(20_000):
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        b = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        assert apply_edits(a, word_edits(a, b)) == b, (a, b)


def test_edits_are_whole_words_and_numbers():
    assert word_edits("It premiered on September 25, 2017, on CBS.", "It premiered on September 25, 1815, on CBS.") \
        == [[30, 34, "1815"]]
    assert word_edits("rose 6.2 m", "rose 6.5 m") == [[5, 8, "6.5"]]  # not '2' -> '5'
    assert word_edits("a variety of tools", "30 tools") == [[0, 12, "30"]]  # one edit, not three
    assert word_edits("No, people cannot", "Yes, people can") == [[0, 2, "Yes"], [11, 17, "can"]]
    assert word_edits("same", "same") == []
    assert word_edits("hello", "hello world") == [[5, 5, " world"]]
