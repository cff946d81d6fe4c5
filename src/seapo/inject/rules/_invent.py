"""Invented material for hallucinations, made from grammars rather than fixed lists.

A fixed list of names, journals or sentence templates becomes an n-gram a classifier learns to
spot (issue 11 measured 0.99-1.00 pairwise accuracy on the first generation's insertions), so
names and places are put together from syllables: nearly every one is new, and a word that
occurs in one text only gives a classifier nothing to learn. The glue around them is drawn from
many alternatives, and every invented piece replaces or extends words already in the sentence.
"""

from __future__ import annotations

from random import Random

_ONSETS = ("b", "br", "c", "d", "dr", "f", "g", "gr", "h", "j", "k", "kl", "l", "m", "n", "p", "pr", "r",
           "s", "st", "t", "tr", "v", "w", "z", "sh", "ch", "th", "bl", "fl", "sk", "qu")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "a", "i", "ea", "y")
_CODAS = ("", "", "", "n", "r", "l", "s", "k", "m", "nd", "rn", "st", "ll", "t")
_SURNAME_ENDS = ("", "", "", "son", "berg", "ley", "ova", "ski", "ani", "ez", "er", "wick", "ford", "ing",
                 "man", "ek", "ard", "ino", "ell", "sen", "ov")
_PLACE_ENDS = ("ton", "ville", "burg", "field", "haven", "stad", "port", "ford", "mouth", "dale", "wick",
               "bury", "holm", "mere", "gate", "ridge", "ia", "ara", "ey")
_WORDS_UNDER_20 = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
                   "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


def _syllable(rng: Random, coda: bool) -> str:
    return rng.choice(_ONSETS) + rng.choice(_VOWELS) + (rng.choice(_CODAS) if coda else "")


def _word(rng: Random, ends: tuple[str, ...], most: int) -> str:
    for _ in range(8):
        name = _syllable(rng, False) + _syllable(rng, rng.random() < 0.5) + rng.choice(ends)
        if 4 <= len(name) <= most:
            break
    return name.capitalize()


def first_name(rng: Random) -> str:
    return _word(rng, ("", "", "a", "o", "ie", "en", "el", "is", "an", "ia"), 8)


def surname(rng: Random) -> str:
    return _word(rng, _SURNAME_ENDS, 10)


def place(rng: Random) -> str:
    return _word(rng, _PLACE_ENDS, 11)


def person(rng: Random) -> str:
    """A full invented name: ``Brelo Kastwick`` (an initial now and then)."""
    first = first_name(rng)
    if rng.random() < 0.15:
        first += f" {rng.choice('ABCDEFGHJKLMNPRSTW')}."
    return f"{first} {surname(rng)}"


def institution(rng: Random) -> str:
    """An invented body: a university, institute, agency, clinic ..."""
    p = place(rng)
    kind = rng.choice(("University", "College", "Institute", "Foundation", "Observatory", "Academy",
                       "Museum", "Clinic", "Agency", "Laboratory", "Trust", "Society", "Council", "Library"))
    return rng.choice((f"the {kind} of {p}", f"{p} {kind}", f"the {p} {kind}"))


def count_words(n: int) -> str:
    if n < 20:
        return _WORDS_UNDER_20[n]
    tens, unit = divmod(n, 10)
    return _TENS[tens - 2] + (f"-{_WORDS_UNDER_20[unit]}" if unit else "")


def year(rng: Random, low: int = 1890, high: int = 2021) -> int:
    return rng.randint(low, high)


def pick_by_length(rng: Random, options: list[str], old: str, longer: bool | None) -> str:
    """One option, preferring those longer (``longer``) or not longer than ``old``, so a data
    set's negatives come out longer about half of the time."""
    options = [o for o in dict.fromkeys(options) if o != old]
    if longer is not None:
        fitting = [o for o in options if (len(o) > len(old)) == longer]
        if fitting:
            options = fitting
    return rng.choice(options)
