"""The perturbations: each has a precondition (``applies``) and makes a list of edits.

Every ``make`` returns edits that do not overlap the edits already ``taken`` (or None), so
several perturbations can be combined when one alone changes too little of a long text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from random import Random

from seapo.inject.error_types import ErrorType
from seapo.inject.rules import _lexicon as lex
from seapo.inject.rules._invent import (
    count_words,
    first_name,
    institution,
    person,
    pick_by_length,
    place,
    surname,
    year,
)
from seapo.inject.rules._text import (
    NUM,
    NUM_RE,
    TERMINAL_CHARS,
    Doc,
    Edit,
    Span,
    format_like,
    lower_first,
    number_key,
    overlaps,
    safe_eval,
)
from seapo.inject.verify import STOPWORDS, tokens

Make = Callable[[Doc, Random, list[Edit]], "list[Edit] | None"]


@dataclass(frozen=True)
class Perturbation:
    name: str
    error_type: ErrorType
    weight: float
    """Relative chance of being tried first."""
    applies: Callable[[Doc], bool]
    make: Make
    doc: str
    """One line for docs/rules.md."""
    default: bool = True
    """Used when the config names no perturbations of its type (False: only when named)."""


# ----------------------------------------------------------------------------------------------
# helpers

def _case_like(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def new_number(text: str, rng: Random) -> str:
    """A different, plausible value written like ``text``."""
    key = number_key(text)
    value = float(key)
    if "." in key:
        decimals = len(key.split(".")[1])
        step = 10 ** -decimals
        delta = rng.choice((1, 2, 3, 5)) * step * (1 if value < step * 6 or rng.random() < 0.5 else -1)
        return format_like(round(value + delta, decimals), text)
    n = int(value)
    if n == 0:
        options = [1, 2, 5, 10]
    elif n < 10:
        options = [n + 1, n + 2, n - 1, n * 2]
    else:
        small = max(1, round(n * rng.choice((0.1, 0.2, 0.25, 0.5))))
        options = [n + small, n - small, n * 2, n + 1, n - 1, n + 10]
    options = [o for o in options if o >= 0 and o != n]
    if n > 0:
        options = [o for o in options if o > 0] or [n + 1]
    return format_like(rng.choice(options), text)


def _free(start: int, end: int, taken: list[Edit]) -> bool:
    return not overlaps(Edit(start, end, "", ""), taken)


def _all_free(edits: list[Edit], taken: list[Edit]) -> bool:
    return all(not overlaps(e, taken) for e in edits)


# ----------------------------------------------------------------------------------------------
# negation (shared by correctness "negation" and logic "reversed_conclusion"): written out in
# full ("is" -> "is not", never "isn't": contractions were the first generation's cue), taken
# away as often as added, and never added to a sentence that already holds a negation (no
# double negatives) or to a question, a quotation or fiction.

_AUX = frozenset("is are was were can will would should could has have must".split())
_DO = frozenset(("does", "do", "did"))
_WORD_RE = re.compile(r"[A-Za-z]+(?:['’]t)?")
_NEXT_WORD_RE = re.compile(r"[ \t]+([A-Za-z]+)")
_NOUN_BEFORE_AUX = re.compile(r"\b(?:a|the|free|good|ill|last|tin|your|my)\s+$", re.IGNORECASE)
_NEGATED_RE = re.compile(r"\b(?:not|no|never|none|nothing|nobody|neither|nor|cannot|without|hardly|"
                         r"[A-Za-z]+n['’]t)\b", re.IGNORECASE)
_QUOTED_RE = re.compile(r"[\"“”«»]")
# cheap precondition: any word the negation can act on
_NEGATABLE_RE = re.compile(r"\b(?:is|are|was|were|can|will|would|should|could|has|have|must|cannot|"
                           r"always|never|more|less|true|false|all|not|[a-z]+n't)\b", re.IGNORECASE)
# "all preferences" -> "none preferences", "different clients" -> "same clients", "better
# understand" -> "worse understand", "first-hand" -> "last-hand": swaps that break the grammar
_UNSAFE_OPPOSITES = frozenset(("all", "none", "same", "different", "first", "last", "better", "worse"))
_FULL_NEGATION = {"isn't": "is", "aren't": "are", "wasn't": "was", "weren't": "were", "can't": "can",
                  "cannot": "can", "won't": "will", "wouldn't": "would", "shouldn't": "should",
                  "couldn't": "could", "hasn't": "has", "haven't": "have", "doesn't": "does", "don't": "do",
                  "didn't": "did", "mustn't": "must"}
_ADD_NEGATION = {"can": "cannot"}


def negation_sites(doc: Doc, start: int, end: int) -> list[tuple[int, int, str]]:
    """(start, end, replacement) of every place in text[start:end] whose change negates it:
    ``is`` -> ``is not``, ``is not`` / ``isn't`` -> ``is``, ``never`` -> ``always``, a word for
    its opposite. One pass over the words with dictionary look-ups."""
    text = doc.text
    chunk = text[start:end]
    if _QUOTED_RE.search(chunk) or chunk.rstrip().endswith("?"):
        return []
    negated = bool(_NEGATED_RE.search(chunk))
    sites = []
    for m in _WORD_RE.finditer(text, start, end):
        word = m.group()
        low = word.lower().replace("’", "'")
        if low in _AUX or low in _DO:
            nxt = _NEXT_WORD_RE.match(text, m.end(), end)
            if not nxt:
                continue
            if nxt.group(1).lower() == "not":
                sites.append((m.start(), nxt.end(), word))  # "is not" -> "is"
            elif low in _AUX and not negated and not _NOUN_BEFORE_AUX.search(text, max(0, m.start() - 8),
                                                                            m.start()):
                sites.append((m.start(), m.end(), _case_like(_ADD_NEGATION.get(low, f"{low} not"), word)))
        elif low in _FULL_NEGATION:
            sites.append((m.start(), m.end(), _case_like(_FULL_NEGATION[low], word)))
        elif low in lex.OPPOSITES and low not in _UNSAFE_OPPOSITES and not text.startswith("-", m.end()):
            sites.append((m.start(), m.end(), _case_like(lex.OPPOSITES[low], word)))
    return sites


# ----------------------------------------------------------------------------------------------
# correctness

def _carry(doc: Doc, after: int, mapping: dict[str, str], edits: dict[tuple[int, int], Edit],
           name: str) -> None:
    """Carry changed values into every later step (recomputing it) and later mention."""
    text = doc.text
    for st in doc.steps:
        if st.start < after:
            continue
        changed = [(s, e) for s, e in st.operands if number_key(text[s:e]) in mapping and (s, e) not in edits]
        if not changed:
            continue
        for s, e in changed:
            edits[(s, e)] = Edit(s, e, mapping[number_key(text[s:e])], name, {"carried": True})
        if not st.verified:
            continue
        expr = NUM_RE.sub(lambda m: mapping.get(number_key(m.group()), m.group()), st.expr)
        value = safe_eval(expr)
        if value is None:
            continue
        new = format_like(value, st.result_text)
        if number_key(new) != number_key(st.result_text):
            for s, e in st.results:
                edits[(s, e)] = Edit(s, e, new, name, {"carried": True})
            mapping[number_key(st.result_text)] = new
    regions = [(st.start, st.end) for st in doc.steps]
    for s, e in doc.prose_numbers:
        if s < after or (s, e) in edits or any(a <= s < b for a, b in regions):
            continue
        key = number_key(text[s:e])
        if key in mapping:  # written the way this mention was ("990", not the step's "990.00")
            new = mapping[key]
            if "." not in text[s:e] and float(number_key(new)).is_integer():
                new = format_like(float(number_key(new)), text[s:e])
            edits[(s, e)] = Edit(s, e, new, name, {"carried": True})


def _step_error(doc: Doc, rng: Random, taken: list[Edit], index: int, name: str) -> list[Edit] | None:
    st = doc.steps[index]
    old = st.result_text
    new = new_number(old, rng)
    edits: dict[tuple[int, int], Edit] = {}
    for s, e in st.results:
        edits[(s, e)] = Edit(s, e, new, name, {"expression": st.expr.strip(), "was": old})
    if st.verified:
        _carry(doc, st.end, {number_key(old): new}, edits, name)
    out = sorted(edits.values(), key=lambda e: e.start)
    return out if _all_free(out, taken) else None


def make_calculation(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """A wrong result of one arithmetic step; when the step is a verified one, the wrong value
    is carried through every later step to the final answer."""
    candidates = [i for i, st in enumerate(doc.steps) if _all_free(
        [Edit(s, e, "", "") for s, e in st.results], taken)]
    if not candidates:
        return None
    return _step_error(doc, rng, taken, rng.choice(candidates), "calculation")


def make_operand(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """A misread operand in one verified step, recomputed and carried forward."""
    text = doc.text
    candidates = [i for i, st in enumerate(doc.steps) if st.verified and st.operands]
    rng.shuffle(candidates)
    for i in candidates[:3]:
        st = doc.steps[i]
        s0, e0 = rng.choice(st.operands)
        key = number_key(text[s0:e0])
        new_op = new_number(text[s0:e0], rng)
        edits: dict[tuple[int, int], Edit] = {}
        for s, e in st.operands:
            if number_key(text[s:e]) == key:
                edits[(s, e)] = Edit(s, e, new_op, "operand", {"expression": st.expr.strip(),
                                                               "was": text[s:e]})
        value = safe_eval(NUM_RE.sub(lambda m, k=key, n=new_op: n if number_key(m.group()) == k
                                     else m.group(), st.expr))
        if value is None:
            continue
        new = format_like(value, st.result_text)
        if number_key(new) == number_key(st.result_text):
            continue
        for s, e in st.results:
            edits[(s, e)] = Edit(s, e, new, "operand", {"carried": True})
        _carry(doc, st.end, {number_key(st.result_text): new}, edits, "operand")
        out = sorted(edits.values(), key=lambda e: e.start)
        if _all_free(out, taken):
            return out
    return None


def make_final_answer(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """A wrong final answer: the last step that produced it gets the wrong value (so the text
    stays self-consistent from there), or the stated answer alone when no step produced it."""
    fa = doc.final_answer
    if fa is None:
        return None
    key = number_key(doc.text[fa[0]:fa[1]])
    for i in range(len(doc.steps) - 1, -1, -1):
        st = doc.steps[i]
        if number_key(st.result_text) == key and st.end <= fa[0]:
            out = _step_error(doc, rng, taken, i, "final_answer")
            if out and any(e.start == fa[0] for e in out):
                return out
            break
    new = new_number(doc.text[fa[0]:fa[1]], rng)
    edits = [Edit(fa[0], fa[1], new, "final_answer")]
    # the same value restated just before the answer line changes with it
    line_start = doc.text.rfind("\n", 0, doc.tail_start - 1) + 1 if doc.tail_start < len(doc.text) else fa[0]
    for s, e in doc.prose_numbers:
        if line_start <= s < fa[0] and number_key(doc.text[s:e]) == key and _free(s, e, taken):
            edits.append(Edit(s, e, new, "final_answer"))
    edits.sort(key=lambda e: e.start)
    return edits if _all_free(edits, taken) else None


_YEAR_CONTEXT = re.compile(r"(?:\b(?:in|since|by|from|until|till|before|after|of|year|around|circa|"
                           r"early|late|mid|between|and|to|during|c\.)|[–(\-,])\s*$", re.IGNORECASE)
_YEAR_RE = re.compile(r"(?<![\w.,$])(1[5-9]\d\d|20\d\d)(?![\w%]|[.,]\d)")
_CENTURY_RE = re.compile(r"\b(\d{1,2})(st|nd|rd|th)([ -]century)\b", re.IGNORECASE)
_MONTH_DAY_RE = re.compile(r"\b(" + "|".join(m for m in lex.MONTHS if m != "May") + "|"
                           + "|".join(lex.WEEKDAYS) + r")\b")


def _date_sites(doc: Doc) -> list[tuple[int, int, str]]:
    text = doc.text
    sites = []
    for m in _YEAR_RE.finditer(doc.masked):
        before = text[max(0, m.start() - 12):m.start()]
        if _YEAR_CONTEXT.search(before) or _MONTH_DAY_RE.search(before) and doc.in_prose(m.start(), m.end()):
            if doc.in_prose(m.start(), m.end()):
                sites.append((m.start(1), m.end(1), "year"))
    for m in _CENTURY_RE.finditer(text):
        if doc.in_prose(m.start(), m.end()):
            sites.append((m.start(), m.end(), "century"))
    for m in _MONTH_DAY_RE.finditer(text):
        if doc.in_prose(m.start(), m.end()):
            sites.append((m.start(), m.end(), "month" if m.group() in lex.MONTHS else "weekday"))
    return sites


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def make_date(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """A wrong year, century, month or weekday."""
    sites = [s for s in _date_sites(doc) if _free(s[0], s[1], taken)]
    if not sites:
        return None
    s, e, kind = rng.choice(sites)
    old = doc.text[s:e]
    if kind == "year":
        year = int(old)
        new = str(year + rng.choice((-1, 1)) * rng.choice((1, 2, 3, 5, 10, 12, 20)))
        if int(new) > 2030:
            new = str(year - rng.choice((3, 7, 11)))
    elif kind == "century":
        m = _CENTURY_RE.match(old)
        n = int(m.group(1))
        new = _ordinal(n + 1 if n < 21 and rng.random() < 0.5 or n < 3 else n - 1) + m.group(3)
    else:
        pool = [x for x in (lex.MONTHS if kind == "month" else lex.WEEKDAYS) if x not in (old, "May")]
        new = rng.choice(pool)
    return [Edit(s, e, new, "date", {"kind": kind})]


_UNIT_RE = re.compile(rf"(?<![\w.])(?:{NUM})[ \t]?-?[ \t]?("
                      + "|".join(re.escape(u) for u in sorted(lex.UNIT_SWAP, key=len, reverse=True))
                      + r")(?![\w/])")


def make_unit(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """The unit of a quantity swapped for another of the same dimension (km -> miles)."""
    sites = [(m.start(1), m.end(1)) for m in _UNIT_RE.finditer(doc.masked)
             if doc.in_prose(m.start(), m.end()) and _free(m.start(1), m.end(1), taken)]
    if not sites:
        return None
    s, e = rng.choice(sites)
    return [Edit(s, e, lex.UNIT_SWAP[doc.text[s:e]], "unit")]


_ENTITY_RE = re.compile(r"\b(" + "|".join(re.escape(n) for n in sorted(
    lex.ENTITY_TO_CATEGORY, key=len, reverse=True)) + r")\b")


_CAPITALIZED_BEFORE = re.compile(r"[A-Z][a-z]+[ \t]$")
_CAPITALIZED_AFTER = re.compile(r"[ \t][A-Z][a-z]")


def _entity_sites(doc: Doc) -> list[re.Match[str]]:
    text = doc.text
    # part of a longer name ("South Africa", "Google Cloud") is not the entity itself
    return [m for m in _ENTITY_RE.finditer(text) if doc.in_prose(m.start(), m.end())
            and not _CAPITALIZED_BEFORE.search(text, max(0, m.start() - 20), m.start())
            and not _CAPITALIZED_AFTER.match(text, m.end())]


def make_entity(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """A named entity swapped for another of the same kind (capital, scientist, planet ...)."""
    sites = [m for m in _entity_sites(doc) if _free(m.start(), m.end(), taken)]
    if not sites:
        return None
    m = rng.choice(sites)
    category = lex.ENTITY_TO_CATEGORY[m.group()]
    pool = [n for n in lex.ENTITY_CATEGORIES[category] if n != m.group() and n not in doc.text]
    if not pool:
        return None
    new = rng.choice(pool)
    edits = [Edit(m.start(), m.end(), new, "entity", {"category": category})]
    # every later mention of the same entity changes too, so the text stays consistent
    for other in sites:
        if other.start() > m.start() and other.group() == m.group():
            edits.append(Edit(other.start(), other.end(), new, "entity", {"category": category}))
    return edits


def make_negation(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """A stated fact negated or turned into its opposite (is -> is not, is not -> is, can ->
    cannot, always -> never, more -> less); a negation is taken away as often as one is added,
    so neither "not" nor its absence marks the negatives."""
    if _creative(doc) or doc.final_answer is not None:
        return None  # worked solutions get number errors: a "not" there would be the cue
    claims = [c for c in doc.claim_sentences() if not _REQUEST_RE.search(doc.text, c.body, c.end)]
    found: list[tuple[int, int, str]] = []
    for i in rng.sample(range(len(claims)), min(len(claims), 8)):  # a few sentences, not all
        found += [x for x in negation_sites(doc, claims[i].body, claims[i].end) if _free(x[0], x[1], taken)]
    removals = [x for x in found if "not" not in x[2].split() and x[2].lower() != "cannot"
                and (x[1] - x[0] > len(x[2]) or doc.text[x[0]:x[1]].lower() in _FULL_NEGATION)]
    opposites = [x for x in found if doc.text[x[0]:x[1]].lower() in lex.OPPOSITES]
    # a negation is taken away where the text has one, added only now and then otherwise, so
    # that about as many negatives lose a "not" as gain one
    pool = removals or opposites or (found if rng.random() < 0.35 else [])
    if not pool:
        return None
    s, e, rep = rng.choice(pool)
    return [Edit(s, e, rep, "negation")]


_ENUMERATION_GAP_RE = re.compile(r"\s*(?:,|and|or|/|&|-|–|to|,\s*and|,\s*or)?\s*(?:the\s+)?")
_SWAP_NUMBER_RE = re.compile(rf"(?<![\w.,/\-^$])({NUM})(?![\w/^%]|[.,]\d)")


def _same_kind(x: str, y: str, gap: str) -> bool:
    """Two names that can trade places: of one built-in category, or two single-word names (not
    adjectives like "Moroccan") with a few words between them."""
    cx, cy = lex.ENTITY_TO_CATEGORY.get(x), lex.ENTITY_TO_CATEGORY.get(y)
    if cx or cy:
        return cx == cy
    adjective = ("an", "ese", "ish", "ic", "ian", "ean")
    return " " not in x and " " not in y and not x.endswith(adjective) and not y.endswith(adjective) \
        and gap.count(" ") >= 3


def _swap_sites(doc: Doc) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Two different names (or two different numbers) in one claim sentence."""
    text = doc.text
    out = []
    if doc.final_answer is not None or _creative(doc):
        return out  # worked solutions have their own number errors
    for s in doc.claim_sentences(50):
        names = [(m.start(1), m.end(1)) for m in _PROPER_RE.finditer(text, s.body, s.end)
                 if text[m.start(1):m.end(1)].split(" ", 1)[0].lower() not in _GENERIC_CAPITALIZED]
        steps = [(st.start, st.end) for st in doc.steps]
        nums = [(m.start(1), m.end(1)) for m in _SWAP_NUMBER_RE.finditer(doc.masked, s.body, s.end)
                if not any(a <= m.start(1) < b for a, b in steps)]  # a worked step has its own errors
        for group in (names, nums):
            for i, a in enumerate(group):
                for b in group[i + 1:i + 3]:
                    x, y = text[a[0]:a[1]], text[b[0]:b[1]]
                    gap = text[a[1]:b[0]]
                    if _ENUMERATION_GAP_RE.fullmatch(gap) or group is names and not _same_kind(x, y, gap):
                        continue  # items of one list, or names of different kinds: no fact changes
                    if group is nums and _COUNTER_BEFORE_RE.search(text, max(0, a[0] - 14), a[0]):
                        continue
                    if x != y and (group is names or number_key(x) != number_key(y)):
                        out.append((a, b))
    return out


def make_swapped_facts(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """Two names or two figures of one sentence swapped ("Paris is the capital of France" ->
    "France is the capital of Paris", "born in 1879, died in 1955" -> "born in 1955, died in
    1879"): the same words, a false statement."""
    pairs = [p for p in _swap_sites(doc) if _free(p[0][0], p[0][1], taken) and _free(p[1][0], p[1][1], taken)]
    if not pairs:
        return None
    a, b = rng.choice(pairs)
    text = doc.text
    return [Edit(a[0], a[1], text[b[0]:b[1]], "swapped_facts", {"with": text[b[0]:b[1]]}),
            Edit(b[0], b[1], text[a[0]:a[1]], "swapped_facts", {"with": text[a[0]:a[1]]})]


# A label after a key word ("the answer is (B)", "Output: Yes", "A: neutral") ...
_LABEL_RE = re.compile(
    r"(?:\b(?i:answer|output|label|sentiment|prediction|verdict|classification|result)\b\s*"
    r"(?i:is|:|would be|should be|=)|^A:)\s*[:\-]?\s*[\"'(\[*]*([A-Za-z]+)(?=[\"')\].,!*:;]|\s|$)",
    re.MULTILINE)
# ... or a line that opens with a label on its own ("Yes, because ...", "False.", "Positive").
_LABEL_START_RE = re.compile(r"^[\"'(\[*]*(?:\[[IVX]+\][ \t]*)?([A-Za-z]+)(?=[\"')\]*]*(?:[.,!;:]|[ \t]*$))",
                             re.MULTILINE)
# An option marker the answer opens with: "[II] yes".
_ROMAN_MARKER_RE = re.compile(r"^[ \t]*\[(I|II|III|IV|V)\]", re.MULTILINE)
_ROMAN_NEXT = {"I": "II", "II": "I", "III": "II", "IV": "III", "V": "IV"}
_OPTION_RE = re.compile(r"(?:\(([A-H])\)|\b([A-H])\))")


def _restated(label: str) -> str:
    """A one-word answer flipped between stop words ("Yes" -> "No") changes no content word the
    verifier counts, so the flipped label is restated with the question's own sense."""
    return ", that is right" if label.lower() == "yes" else ", that is wrong"


def _answer_sites(doc: Doc) -> list[tuple[int, int, str]]:
    text = doc.text
    sites = []
    options = sorted({a or b for a, b in _OPTION_RE.findall(doc.question)}) or list("ABCD")
    matches = sorted([*_LABEL_RE.finditer(text), *_LABEL_START_RE.finditer(text)], key=lambda m: m.start(1))
    for m in matches:
        word = m.group(1)
        if not doc.in_prose(m.start(1), m.end(1)) or sites and sites[-1][0] == m.start(1):
            continue
        low = word.lower()
        if low in lex.ANSWER_FLIP:
            rep = _case_like(lex.ANSWER_FLIP[low], word)
            if m.start(1) == 0 and doc.num_tokens <= 2 and rep.lower() in STOPWORDS:
                rep += _restated(rep)
            sites.append((m.start(1), m.end(1), rep))
        elif len(word) == 1 and word in "ABCDEFGH" and m.re is _LABEL_RE and m.start(1) > 0:
            others = [o for o in options if o != word]
            if others:  # the caller draws which other option
                sites.append((m.start(1), m.end(1), others[0]))
    for m in _ROMAN_MARKER_RE.finditer(text):
        if doc.in_prose(m.start(1), m.end(1)):
            sites.append((m.start(1), m.end(1), _ROMAN_NEXT[m.group(1)]))
    sites.sort()
    return sites


def make_answer_choice(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """A wrong label or option as the answer (yes -> no, (B) -> (C), positive -> negative)."""
    sites = [s for s in _answer_sites(doc) if _free(s[0], s[1], taken)]
    if not sites:
        return None
    s, e, rep = sites[-1] if rng.random() < 0.7 else rng.choice(sites)  # the final answer most often
    if len(rep) == 1 and rep in "ABCDEFGH":
        others = [o for o in (sorted({a or b for a, b in _OPTION_RE.findall(doc.question)}) or list("ABCD"))
                  if o != doc.text[s:e]]
        rep = rng.choice(others)
    return [Edit(s, e, rep, "answer_choice")]


_OPTION_LINE_RE = re.compile(r"^[ \t]*(?:[-*•+]|\(?[A-Ha-h1-9][).\]]|\[[IVX]+\]|\(?[ivx]+\))[ \t]*([^\n]{1,60})$",
                             re.MULTILINE)
_FUNCTION_WORDS = frozenset("about above after again against also among because before being below "
                            "between both could does doing down during each from further have having "
                            "here into itself more most other over same should some such than that "
                            "their them then there these they this those through under until very what "
                            "when where which while whom will with would your".split())


def _answer_pool(doc: Doc) -> list[str]:
    answer = set(tokens(doc.text))
    options = [m.group(1).strip() for m in _OPTION_LINE_RE.finditer(doc.question)]
    quoted = [a or b for a, b in re.findall(r"\"([^\"\n]{1,40})\"|'([^'\n]{2,40})'", doc.question)]
    words = [w for w in re.findall(r"\b[A-Za-z][a-z]{4,}\b", doc.question)
             if w.lower() not in _FUNCTION_WORDS and w.lower() not in STOPWORDS]
    for group in (options, quoted, words):
        pool = [c for c in dict.fromkeys(group) if tokens(c) and not set(tokens(c)) & answer
                and any(t not in STOPWORDS for t in tokens(c))]
        if pool:
            return pool
    return []


def make_answer_swap(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """A short answer replaced by another candidate from the question (its options first)."""
    text = doc.text
    body = text.strip()
    start = text.find(body)
    if not body or not _free(start, start + len(body), taken):
        return None
    pool = _answer_pool(doc)
    if not pool:
        return None
    new = rng.choice(pool[:40])
    if body[-1] in TERMINAL_CHARS and new[-1] not in TERMINAL_CHARS:
        new += body[-1]
    return [Edit(start, start + len(body), new, "answer_swap")]


_CODE_NUM_RE = re.compile(r"(?<![\w.\"'])(\d+(?:\.\d+)?)(?![\w.\"'])")
_CODE_WORD_SWAP = {"True": "False", "False": "True", "true": "false", "false": "true", "min": "max",
                   "max": "min", "any": "all", "all": "any", "floor": "ceil", "ceil": "floor",
                   "upper": "lower", "lower": "upper", "startswith": "endswith", "endswith": "startswith",
                   "break": "continue", "continue": "break", "append": "remove", "sorted": "reversed",
                   "left": "right", "right": "left", "first": "last", "last": "first"}
_CODE_WORD_RE = re.compile(r"\b(" + "|".join(_CODE_WORD_SWAP) + r")\b")
_CODE_OP_SWAP = {"<=": "<", ">=": ">", "<": "<=", ">": ">=", "==": "!=", "!=": "==", "+=": "-=",
                 "-=": "+=", "+": "-", "-": "+", "*": "/"}
_CODE_OP_RE = re.compile(r"(?<=[\w)\] ])[ ]?(<=|>=|==|!=|\+=|-=|<|>|\+|-|\*)(?=[ ]?[\w(\[])")


def _code_sites(doc: Doc, rx: re.Pattern[str]) -> list[re.Match[str]]:
    out = []
    text = doc.text
    for s, e, _ in doc.code_regions:
        for m in rx.finditer(text, s, e):
            line_start = text.rfind("\n", 0, m.start()) + 1
            line = text[line_start:text.find("\n", m.start()) if "\n" in text[m.start():] else len(text)]
            if line.lstrip().startswith(("#", "//", "import ", "from ", "<", "@")) or \
                    doc.in_code_string(m.start(), m.end()):
                continue  # comments, imports, decorators, docstrings: not code to get wrong
            out.append(m)
    return out


def make_code_constant(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """A numeric constant in code changed (an off-by-one or wrong literal)."""
    sites = [m for m in _code_sites(doc, _CODE_NUM_RE) if _free(m.start(1), m.end(1), taken)]
    if not sites:
        return None
    m = rng.choice(sites)
    return [Edit(m.start(1), m.end(1), new_number(m.group(1), rng), "code_constant")]


def make_code_operator(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """An operator or keyword in code swapped (True/False, min/max, < / <=, + / -)."""
    words = [m for m in _code_sites(doc, _CODE_WORD_RE) if _free(m.start(1), m.end(1), taken)]
    ops = [m for m in _code_sites(doc, _CODE_OP_RE) if _free(m.start(1), m.end(1), taken)]
    # word swaps change a token the verifier sees; operator swaps are combined with another edit
    pick = words if words and (not ops or rng.random() < 0.7) else ops
    if not pick:
        return None
    m = rng.choice(pick)
    swap = _CODE_WORD_SWAP if pick is words else _CODE_OP_SWAP
    return [Edit(m.start(1), m.end(1), swap[m.group(1)], "code_operator")]


# ----------------------------------------------------------------------------------------------
# logic: a real dependency broken -- a step moved before the one it uses, a premise removed, a
# cause and its effect swapped, a conclusion that no longer follows. No inserted sentences.

_CONCLUSION_RE = re.compile(
    r"(?:^|\b)(therefore|thus|hence|so|consequently|as a result|in conclusion|in summary|overall|"
    r"to conclude|this means|this shows|in short|the answer is|answer:)\b", re.IGNORECASE)
_CONCLUSION_START_RE = re.compile(
    r"(?:So|Thus|Therefore|Hence|Consequently|As a result|This means|This shows|That is why|That's why|"
    r"Because of this|For this reason|It follows that|In total|Altogether)\b")


def _conclusions(doc: Doc) -> list[Span]:
    return [s for s in doc.sentences if s.end <= doc.tail_start and _CONCLUSION_RE.search(doc.text, s.body,
                                                                                          s.end)]


def _creative(doc: Doc) -> bool:
    return bool(_CREATIVE_RE.search(doc.question[:2000]))


def make_reversed_conclusion(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """The conclusion turned around so it no longer follows: "therefore X" -> "therefore not
    X" (or "not X" -> "X"), or the concluded label flipped."""
    text = doc.text
    if _creative(doc):
        return None
    spans = [s for s in _conclusions(doc) if _free(s.body, s.end, taken)]
    if not spans:
        return None
    rng.shuffle(spans)
    for s in spans[:4]:
        marker = _CONCLUSION_RE.search(text, s.body, s.end)
        labels = [x for x in _answer_sites(doc) if s.body <= x[0] < s.end and x[0] >= marker.end()]
        if labels:
            a, b, rep = labels[-1]
            if len(rep) == 1:
                rep = rng.choice([o for o in "ABCD" if o != text[a:b]])
            return [Edit(a, b, rep, "reversed_conclusion", {"conclusion": [s.body, s.end]})]
        sites = negation_sites(doc, marker.end(), s.end) if doc.final_answer is None else []
        removals = [x for x in sites if len(x[2]) < x[1] - x[0]]
        opposites = [x for x in sites if text[x[0]:x[1]].lower() in lex.OPPOSITES]
        # a negation taken away when there is one, else an opposite, and added only now and then
        # (as in make_negation): "can" -> "cannot" had been 22 of 80 such edits against 3 the other
        # way, and "cannot" the strongest word of the logic negatives
        pool = removals or opposites or (sites if rng.random() < 0.35 else [])
        if pool:
            a, b, rep = rng.choice(pool)
            return [Edit(a, b, rep, "reversed_conclusion", {"conclusion": [s.body, s.end]})]
    return None


def _line_facts(doc: Doc, line: Span) -> tuple[set[str], set[str]]:
    """(numbers the line computes, numbers it works with: its steps' operands and every number it
    mentions), found once per line."""
    key = ("line", line.start)
    found = doc.sites.get(key)
    if found is None:
        text = doc.text
        steps = [st for st in doc.steps if line.start <= st.start and st.end <= line.end + 1]
        used = {number_key(text[s:e]) for st in steps for s, e in st.operands}
        used |= {number_key(text[s:e]) for s, e in doc.prose_numbers if line.start <= s < line.end}
        found = doc.sites[key] = ({number_key(st.result_text) for st in steps}, used)
    return found


def _results(doc: Doc, line: Span) -> set[str]:
    return _line_facts(doc, line)[0]


def _uses(doc: Doc, line: Span) -> set[str]:
    return _line_facts(doc, line)[1]


def _step_lines(doc: Doc) -> list[Span]:
    text = doc.text
    return [ln for ln in doc.lines if ln.end <= doc.tail_start and not text[ln.body:ln.end].endswith(":")
            and not text[ln.start:ln.end].lstrip().startswith("#")]


def _dependent_lines(doc: Doc) -> list[tuple[Span, Span]]:
    """Adjacent lines (a, b) where b uses a number that a computes: b moved first uses it before
    it is derived. Independent lines (list items, facts) are never paired."""
    text = doc.text
    lines = _step_lines(doc)
    pairs = []
    for a, b in zip(lines, lines[1:], strict=False):
        gap = text[a.end:b.start]
        if gap.strip() or gap.count("\n") > 2 or (a.body > a.start) != (b.body > b.start):
            continue
        produced = _results(doc, a) - {"0", "1", "2"}
        if produced and produced & _uses(doc, b) and not _results(doc, b) & _uses(doc, a) \
                or not doc.steps and _follows_from(text[a.body:a.end], text[b.body:b.end]):
            pairs.append((a, b))
    return pairs


_SEQUEL_RE = re.compile(r"^(?:Then|Next|After (?:that|this)|Afterwards|Once (?:it|this|that|the|they|you)|"
                        r"When (?:it|this|that|the|they) (?:is|are|has|have)|Use (?:it|this|the)|"
                        r"Add (?:it|this|the)|Pour (?:it|this|the)|Place (?:it|this|the)|Remove (?:it|the))\b")
_CONTENT_WORD_RE = re.compile(r"[a-z]{5,}")


def _follows_from(first: str, second: str) -> bool:
    """The second step builds on the first: it opens with a sequel ("Then", "Once the ...",
    "Add the ...") and works on something the first one names (a shared content word)."""
    if not _SEQUEL_RE.match(second):
        return False
    shared = set(_CONTENT_WORD_RE.findall(first.lower())) & set(_CONTENT_WORD_RE.findall(second.lower()))
    return bool(shared - _FUNCTION_WORDS)


def _dependent_sentences(doc: Doc) -> list[tuple[Span, Span]]:
    """Adjacent sentences of one paragraph where the second draws a conclusion from the first
    ("So ...", "Therefore ...", "This means ...")."""
    text = doc.text
    sents = [s for s in doc.sentences if s.end <= doc.tail_start]
    pairs = []
    for a, b in zip(sents, sents[1:], strict=False):
        gap = text[a.end:b.start]
        if "\n" in gap or gap.strip() or text[a.end - 1] not in TERMINAL_CHARS or text[b.end - 1] not in \
                TERMINAL_CHARS or a.body != a.start and a.start < b.start and text[a.start:a.body].strip():
            continue
        if _CONCLUSION_START_RE.match(text, b.body) and not _CONCLUSION_START_RE.match(text, a.body) \
                and text.count(" ", a.body, a.end) >= 3:
            pairs.append((a, b))
    return pairs


def make_reordered_steps(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """A step moved before the step it depends on: a line that uses a number computed by the
    line above it now comes first, or a conclusion ("So ...") now comes before its premise.
    List markers stay in place."""
    text = doc.text
    pairs = [(a, b, "lines") for a, b in _dependent_lines(doc)] + \
            [(a, b, "sentences") for a, b in _dependent_sentences(doc)]
    pairs = [p for p in pairs if _free(p[0].body, p[1].end, taken)]
    if not pairs:
        return None
    a, b, unit = rng.choice(pairs)
    first, second = text[a.body:a.end], text[b.body:b.end]
    replacement = second + text[a.end:b.body] + first
    return [Edit(a.body, b.end, replacement, "reordered_steps", {"unit": unit, "segments": [first, second]})]


def _premises(doc: Doc) -> list[tuple[int, int, str]]:
    """(start, end, unit) of a line whose computed number a later line uses: removed, the later
    line uses a number nothing produced. Only lines: the dependency is proven by the number's
    flow. A prose sentence before a "So ..." was a site in v2, but read by hand its removal held
    an error in only 5 of 9 cases (the conclusion often stood on the rest of the text): a
    deletion that merely shortens a correct answer is not a SeaPO negative."""
    text = doc.text
    out = []
    lines = _step_lines(doc)
    for i, a in enumerate(lines[:-1]):
        produced = _results(doc, a) - {"0", "1", "2"}
        if produced and any(produced & _uses(doc, b) for b in lines[i + 1:]) and a.body == a.start:
            end = a.end + 1 if text[a.end:a.end + 1] == "\n" else a.end
            if a.start == 0:  # the text's first line: take the blank lines after it too (no leading newline)
                end += len(text[end:]) - len(text[end:].lstrip())
            out.append((a.start, end, "line"))
    return out


def make_premise_removed(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """A premise removed: the line that computes a number a later line uses, so that line's
    number comes from nowhere."""
    sites = [x for x in _premises(doc) if _free(x[0], x[1], taken)]
    if not sites:
        return None
    s, e, unit = rng.choice(sites)
    return [Edit(s, e, "", "premise_removed", {"unit": unit, "removed": doc.text[s:e].strip()})]


_CAUSE_PATTERNS = (
    ("because", re.compile(r"^(?P<x>[^;:()\"“”]{10,}?),? because (?!of\b)(?P<y>[^,;:()\"“”]{8,})$")),
    ("since", re.compile(r"^(?P<m>Since|Because|As) (?P<y>[^,;()\"“”]{8,}?), (?P<x>[^;()\"“”]{8,})$")),
    ("if", re.compile(r"^(?P<m>If|When) (?P<y>[^,;()\"“”]{6,}?), (?P<t>then )?(?P<x>[^;()\"“”]{6,})$")),
    ("so", re.compile(r"^(?P<y>[^;()\"“”]{10,}?), (?P<c>so|therefore|thus|hence) (?P<x>[^,;()\"“”]{8,})$")),
    # "X if Y" -> "Y if X": the converse. The condition stays a condition (dropping it took an "if"
    # out of every such negative, and that absence was logic's strongest cue)
    ("if_after", re.compile(r"^(?P<x>[^;:()\"“”]{10,}?),? if (?P<y>(?:(?! if )[^,;:()\"“”]){8,})$")),
)
# the subject of a clause that can open the converse: for "X if Y" a capitalized first word is not
# enough (X is often an imperative: "Contact us if ...")
_MODAL_HEAD_RE = re.compile(r"^(?:[\w'’-]+ ){1,3}?(?:may|might|could|would|will|should|must|won't|wouldn't|"
                            r"shouldn't|couldn't|won’t)\b", re.IGNORECASE)
# "In summary, APIs are ... because ...": the opener stays first ("... because in summary, ..." was broken)
_DISCOURSE_OPENER_RE = re.compile(r"^(?:In (?:summary|short|general|practice|conclusion|addition|fact)|Overall|"
                                  r"Additionally|However|Also|Ultimately|Furthermore|Moreover|Finally|Generally|"
                                  r"Typically|Usually|Today|Historically|Essentially|Basically), ")
_NOT_A_CONDITION = frozenset("even as only what see ask check wonder know determine decide tell sure".split())
_SUBJECT_START_RE = re.compile(
    r"(?:[Tt]he|[Aa]n?|[Ii]t|[Tt]his|[Tt]hat|[Tt]hese|[Tt]hose|[Tt]hey|[Ww]e|[Yy]ou|[Hh]e|[Ss]he|[Tt]here|[Ii]ts|"
    r"[Tt]heir|[Yy]our|[Oo]ur|[Hh]is|[Hh]er|[Ee]ach|[Ee]very|[Mm]ost|[Ss]ome|[Mm]any|[Pp]eople|[Uu]sers)\b "
    r"(?!please\b)[a-z]")


_CLAUSE_START_RE = re.compile(
    r"(?:[Tt]he|[Aa]n?|[Ii]t|[Tt]his|[Tt]hat|[Tt]hese|[Tt]hose|[Tt]hey|[Ww]e|[Yy]ou|[Hh]e|[Ss]he|[Tt]here|[Ii]ts|"
    r"[Tt]heir|[Yy]our|[Oo]ur|[Hh]is|[Hh]er|[Ee]ach|[Ee]very|[Aa]ll|[Ss]ome|[Mm]any|[Mm]ost|[A-Z][a-z]+)\b "
    r"(?!please\b)")


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _cause_sites(doc: Doc) -> list[tuple[int, int, str, str]]:
    text = doc.text
    if _creative(doc):
        return []
    out = []
    for s in doc.claim_sentences(45):
        end = s.end
        while end > s.body and text[end - 1] in TERMINAL_CHARS:
            end -= 1
        chunk = text[s.body:end]
        if "<<" in chunk or "because" not in chunk and "ince " not in chunk and "f " not in chunk and \
                "hen " not in chunk and " so " not in chunk and "thus" not in chunk and "hence" not in chunk \
                and "therefore" not in chunk:
            continue
        for kind, rx in _CAUSE_PATTERNS:
            m = rx.match(chunk)
            if not m:
                continue
            x, y = m.group("x").strip(), m.group("y").strip()
            lead = ""
            if kind == "because":  # "In 1922, X because Y" -> "In 1922, Y because X"
                opener = re.match(r"^[^,]{2,25}, (?=[a-z])", x) or _DISCOURSE_OPENER_RE.match(x)
                if opener and opener.group().count(" ") <= 3:
                    lead, x = opener.group(), x[opener.end():]
            if not _CLAUSE_START_RE.match(x) or not _CLAUSE_START_RE.match(y) or \
                    x.rsplit(" ", 1)[-1].lower() in STOPWORDS or y.rsplit(" ", 1)[-1].lower() in STOPWORDS:
                break  # "If you have questions, please ask": an imperative has no converse
            if kind == "if_after" and (not _SUBJECT_START_RE.match(x) or not _SUBJECT_START_RE.match(y)
                                       or _REQUEST_RE.search(chunk)
                                       or x.rsplit(" ", 1)[-1].lower() in _NOT_A_CONDITION
                                       or not _TRAILING_CONDITION_RE.search(chunk[m.start("y") - 5:])):
                break  # "even if", "see if", "if you want": no condition the claim rests on
            if kind in ("if", "if_after") and _MODAL_HEAD_RE.match(x):
                break  # "If you may need to ...", "If it would be best to ...": a modal reads badly as a condition
            if kind == "because" and lead:
                new = f"{lead}{lower_first(y, text)} because {lower_first(x, text)}"
            elif kind == "because":
                new = f"{_cap(y)} because {lower_first(x, text)}"
            elif kind == "since":
                new = f"{m.group('m')} {lower_first(x, text)}, {y}"
            elif kind == "if":
                new = f"{m.group('m')} {lower_first(x, text)}, {m.group('t') or ''}{y}"
            elif kind == "if_after":
                new = f"{_cap(y)} if {lower_first(x, text)}"
            else:
                new = f"{_cap(x)}, {m.group('c')} {lower_first(y, text)}"
            if new != chunk:
                out.append((s.body, end, new, kind))
            break
    return out


def make_reversed_cause(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """Cause and effect (or condition and consequence) swapped: "X because Y" -> "Y because X",
    "If A, then B" -> "If B, then A", "Since A, B" -> "Since B, A" -- the same words, but the
    inference now runs the wrong way."""
    sites = [x for x in _cause_sites(doc) if _free(x[0], x[1], taken)]
    if not sites:
        return None
    s, e, new, kind = rng.choice(sites)
    return [Edit(s, e, new, "reversed_cause", {"kind": kind})]


# pairs whose two sides are both common, so that neither marks the negatives ("because" ->
# "although" and "however" <-> "therefore" were left out: positives hold far more of the first,
# and the second became the cue)
_CONNECTIVE_SWAP = {"so": "but", "but": "so",
                    "consequently": "nevertheless", "nevertheless": "consequently", "as a result": "in contrast",
                    "in contrast": "as a result", "which means": "even though", "even though": "which means",
                    "this means": "even so", "even so": "this means"}
_CONNECTIVE_RE = re.compile(
    r"(?:^|(?<=[.!?] )|(?<=\n))(Consequently|Nevertheless|As a result|In contrast|"
    r"This means|Even so)(?=, )|(?<=, )(so|but|which means|even though)(?= [a-z])", re.MULTILINE)


def _connective_sites(doc: Doc) -> list[re.Match[str]]:
    if _creative(doc):
        return []
    return [m for m in _CONNECTIVE_RE.finditer(doc.masked) if m.end() <= doc.tail_start
            and doc.in_prose(m.start(), m.end())
            and not _QUOTED_RE.search(doc.text, doc.text.rfind("\n", 0, m.start()) + 1, m.start())]


def make_swapped_connective(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """A reason made a contrast or a contrast a reason ("X, so Y" <-> "X, but Y", "which means"
    <-> "even though", "As a result," <-> "In contrast,"): the stated inference no longer holds
    between the two claims. Both directions, so neither kind of word marks the negatives."""
    sites = [m for m in _connective_sites(doc) if _free(m.start(), m.end(), taken)]
    if not sites:
        return None
    m = rng.choice(sites)
    old = m.group()
    return [Edit(m.start(), m.end(), _capital_like(_CONNECTIVE_SWAP[old.lower()], old), "swapped_connective",
                 {"was": old})]


_REQUEST_RE = re.compile(r"\b(?:please|let me|let us|I am not sure|I'm not sure|I will|I'll|see if|especially|"
                         r"feel free|hesitate)\b", re.IGNORECASE)
# "when ..." clauses mostly set a scene the claim does not need, and "determine if ..." is an
# object, not a condition (hand-read samples): only real conditions, after a claim's verb
_TRAILING_CONDITION_RE = re.compile(
    r"(?<!determine)(?<!\bsee)(?<!know)(?<!check)(?<!\bask)(?<!wonder)(?<!decide)(?<!\btell)(?<!sure)(?<!\beven)"
    r"(?<!\bas)"
    r",? (?:only )?(?:if|unless|as long as|provided that) (?!so\b|not\b|any\b|possible\b|necessary\b|needed\b|"
    r"applicable\b|available\b|desired\b|required\b|you haven|you have not|you want|you like|you need|"
    r"you'd|you would|it's different|it is different)"
    r"[^,;:()\"“”.!?]{6,}$")
_LEADING_CONDITION_RE = re.compile(
    r"^(?:If|Unless|As long as|Provided that) (?!you haven|you have not|you'd|you would|you want|you like|you need|"
    r"that is the case|this is the case|so\b|not\b|needed\b|necessary\b|possible\b)[^,;:()\"“”.!?]{6,}?, "
    r"(?:then )?(?=[a-z])")
_IMPERATIVE_START_RE = re.compile(r"^(?:Don't|Do|Be|Make|Try|Use|Consider|Remember|Always|Never|Keep|Follow)\b")


def _condition_sites(doc: Doc) -> list[tuple[int, int, int]]:
    """(start, end, where the kept claim starts) of a condition a claim depends on."""
    text = doc.text
    if _creative(doc):
        return []
    out = []
    for s in doc.claim_sentences(50):
        end = s.end
        while end > s.body and text[end - 1] in TERMINAL_CHARS:
            end -= 1
        chunk = text[s.body:end]
        if _REQUEST_RE.search(chunk) or _IMPERATIVE_START_RE.match(chunk):
            continue  # "let me know if ...", "Don't be hard on yourself if ...": no claim rests on it
        if "<<" in chunk or ("if " not in chunk and "nless " not in chunk and "If " not in chunk
                             and "as long as" not in chunk and "rovided" not in chunk):
            continue
        m = _LEADING_CONDITION_RE.match(chunk)
        if m:
            out.append((s.body, s.body + m.end(), 1))
            continue
        m = _TRAILING_CONDITION_RE.search(chunk)
        if m and m.start() >= 12:
            out.append((s.body + m.start(), end, 0))
    return out


def make_dropped_condition(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """The condition a claim depends on removed ("X if Y." -> "X."; "If Y, X." -> "X."): the
    claim is now asserted without the premise that made it true. Shorter than the positive."""
    sites = [x for x in _condition_sites(doc) if _free(x[0], x[1], taken)]
    if not sites:
        return None
    s, e, leading = rng.choice(sites)
    edits = [Edit(s, e, "", "dropped_condition", {"removed": doc.text[s:e].strip(" ,")})]
    if leading:  # the kept claim now starts the sentence
        edits = [Edit(s, e + 1, doc.text[e].upper(), "dropped_condition",
                      {"removed": doc.text[s:e].strip(" ,")})]
    return edits


def make_wrong_conclusion(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """The stated final answer replaced by an intermediate result of the working: the conclusion
    no longer follows from the last step (a whole number stays a whole number)."""
    fa = doc.final_answer
    if fa is None or not _free(fa[0], fa[1], taken):
        return None
    final = number_key(doc.text[fa[0]:fa[1]])
    whole = final.isdigit()
    options = [st.result_text for st in doc.steps if st.end <= fa[0] and number_key(st.result_text) != final
               and (not whole or number_key(st.result_text).isdigit())]
    if not options:
        return None
    return [Edit(fa[0], fa[1], rng.choice(options), "wrong_conclusion", {"was": doc.text[fa[0]:fa[1]]})]


_SIMPLE_STMT = re.compile(r"^([ \t]*)(?!(?:def|class|if|elif|else|for|while|try|except|finally|with|"
                          r"return|yield|break|continue|pass|import|from|@|#|//|\}|\{))\S[^\n]*[^:{\n]$")
_ASSIGNED_RE = re.compile(r"^[ \t]*(?:(?:const|let|var|int|float|double|auto|String)\s+)?([A-Za-z_]\w*)\s*"
                          r"(?:[+\-*/]?=)(?!=)")


def make_code_reorder(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """Two adjacent statements of a code block swapped where the second uses the variable the
    first assigns: a value used before it is computed."""
    text = doc.text
    pairs = []
    for s, e, _ in doc.code_regions:
        lines = list(re.finditer(r"[^\n]*", text[s:e]))
        lines = [(s + m.start(), s + m.end()) for m in lines if m.end() > m.start()]
        for (a0, a1), (b0, b1) in zip(lines, lines[1:], strict=False):
            if b0 != a1 + 1 or doc.in_code_string(a0, b1):
                continue
            ma, mb = _SIMPLE_STMT.match(text, a0, a1), _SIMPLE_STMT.match(text, b0, b1)
            if not ma or not mb or ma.group(1) != mb.group(1) or text[a0:a1] == text[b0:b1]:
                continue
            if text[a0:a1].rstrip().endswith((",", "(", "[", "\\")) or text[b0:b1].strip() in (")", "]"):
                continue
            assigned = _ASSIGNED_RE.match(text, a0, a1)
            if not assigned or not re.search(rf"\b{re.escape(assigned.group(1))}\b",
                                             text[b0:b1][len(mb.group(1)):]):
                continue
            pairs.append((a0, a1, b0, b1))
    pairs = [p for p in pairs if _free(p[0], p[3], taken)]
    if not pairs:
        return None
    a0, a1, b0, b1 = rng.choice(pairs)
    first, second = text[a0:a1], text[b0:b1]
    return [Edit(a0, b1, second + "\n" + first, "code_reorder", {"unit": "lines",
                                                                  "segments": [first, second]})]


_CONDITION_RE = re.compile(r"\b(?:if|elif|while)\s*\(?\s*([\w.\[\]'\"]+(?:\([\w, .]*\))?)\s*(<=|>=|<|>)\s*"
                           r"([\w.\[\]'\"]+(?:\([\w, .]*\))?)")


def make_code_condition(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """An ordering condition in code inverted by swapping its sides (``a < b`` -> ``b < a``)."""
    sites = [m for m in _code_sites(doc, _CONDITION_RE)
             if m.group(1) != m.group(3) and _free(m.start(1), m.end(3), taken)]
    if not sites:
        return None
    m = rng.choice(sites)
    rep = doc.text[m.start(1):m.end(3)].replace(m.group(1), "\x00", 1).replace(m.group(3), m.group(1), 1) \
        .replace("\x00", m.group(3), 1)
    return [Edit(m.start(1), m.end(3), rep, "code_condition")]


# ----------------------------------------------------------------------------------------------
# hallucination: an invented figure, date, source or name woven into a sentence already there,
# replacing or extending its own words (never a new sentence; see _invent for why grammars)

def _prose_sites(doc: Doc, rx: re.Pattern[str], taken: list[Edit], group: int = 0) -> list[re.Match[str]]:
    """Matches of ``rx`` in prose before the closing answer line, free of the edits taken (the
    matches are found once per text: retries and combined edits ask again)."""
    key = (rx.pattern, group)
    found = doc.sites.get(key)
    if found is None:
        found = doc.sites[key] = [m for m in rx.finditer(doc.masked) if m.end(group) <= doc.tail_start
                                  and doc.in_prose(m.start(group), m.end(group))]
    return [m for m in found if _free(m.start(group), m.end(group), taken)] if taken else list(found)


def _longer(rng: Random, p: float = 0.5) -> bool:
    return rng.random() < p


def _capital_like(new: str, old: str) -> str:
    return new[:1].upper() + new[1:] if old[:1].isupper() else new


_PLURAL_NEXT = r"(?:[a-z]+s(?<!ss)(?<!ous)(?<!us)(?<!is)|people|children|men|women|data|media|staff|" \
               r"species|criteria|phenomena|feet|teeth|mice)\b"
_QUANT_RE = re.compile(
    r"(?<!\bas )(?<!\bhow )(?<!\bso )(?<!\btoo )(?<!\bvery )(?<!\bnot )(?<!\bthe )(?<!\bat )"
    r"\b((?i:many|several|numerous|various|countless|multiple|a few|a number of|a lot of|lots of|"
    r"plenty of|a handful of|a variety of|a range of|a wide range of|dozens of|hundreds of|thousands of|"
    r"a majority of|the majority of|most))(?= (?:of (?:the|them|these|those|us|our|their)\b|"
    + _PLURAL_NEXT + "))")
_QUANT_RANGE = {"a few": (3, 5), "a handful of": (3, 6), "several": (4, 9), "various": (4, 11),
                "multiple": (3, 8), "dozens of": (24, 96), "hundreds of": (200, 950),
                "thousands of": (1200, 9800)}
_HEDGES = ("over", "nearly", "about", "some", "at least", "more than", "exactly", "roughly", "around",
           "almost", "up to", "fully", "well over", "just under", "close to")
_SHARES = ("{p}% of", "{p} percent of", "nearly {p}% of", "about {p}% of", "over {p}% of", "{w} in {n} of",
           "two-thirds of", "three-quarters of", "four-fifths of", "{p}% of", "roughly {p}% of")


def make_invented_figure(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """A vague quantity made an invented, precise figure: "many studies" -> "37 studies",
    "most people" -> "81% of people"."""
    if _no_world_claims(doc):
        return None
    sites = [m for m in _prose_sites(doc, _QUANT_RE, taken, 1) if not _creative(doc) and doc.text.count(
        '"', doc.text.rfind("\n", 0, m.start(1)) + 1, m.start(1)) % 2 == 0  # not in a quoted hypothesis
        and not _no_claim_at(doc, m.start(1))]
    if not sites:
        return None
    m = rng.choice(sites)
    old = m.group(1)
    low = old.lower()
    of_next = doc.text.startswith(" of ", m.end(1))
    if low in ("most", "a majority of", "the majority of"):
        p = rng.randint(52, 94)
        options = [s.format(p=p, w=count_words(rng.randint(6, 9)), n="ten") for s in _SHARES]
        if of_next:
            options = [o[:-3] for o in options]  # "most of the" -> "81% of the"
    else:
        lo, hi = _QUANT_RANGE.get(low, (12, 95))
        n = rng.randint(lo, hi)
        written = f"{n:,}" if n >= 1000 else str(n)
        # digits: number words ("five", "seven") are few, so each became a cue
        options = [written, written, count_words(n) if n < 100 and rng.random() < 0.1 else written]
        if n >= 10:
            options += [f"{rng.choice(_HEDGES)} {written}"]
    new = _capital_like(pick_by_length(rng, options, old, _longer(rng, 0.45)), old)
    if new[:1].isdigit() and m.start(1) == doc.text.rfind("\n", 0, m.start(1)) + 1:
        new = _capital_like(rng.choice(("exactly ", "some ", "about ", "nearly ")) + new, "A")
    return [Edit(m.start(1), m.end(1), new, "invented_figure", {"kind": "figure", "was": old})]


# vague time phrase -> invented date; {y} a year, {d} a decade, {k} a count, {M} a month
_TIMES: dict[str, tuple[str, ...]] = {
    "in recent years": ("since {y}", "in the {d}s", "after {y}", "from {y} on", "in {y}"),
    "in recent decades": ("since the {d}s", "since {y}", "after {y}"),
    "nowadays": ("in {y}", "as of {y}", "after {y}"),
    "these days": ("in {y}", "as of {y}"),
    "in the past": ("before {y}", "until {y}", "in the {d}s", "until the {d}s"),
    "for centuries": ("since {y}", "since the {d}s"),
    "for decades": ("since {y}", "since the {d}s"),
    "for years": ("since {y}", "for {k} years", "from {y} on"),
    "for a long time": ("for {k} years", "from {y} on", "since the {d}s"),
    "over time": ("after {y}", "by {y}", "over {k} years", "by the {d}s"),
    "at some point": ("in {y}", "around {y}", "in {M} {y}"),
    "in the future": ("by {f}", "by {M} {f}", "after {f}"),
    "recently,": ("in {y},", "in {M} {y},", "since {y},"),
    "today,": ("as of {y},", "since {y},", "by {y},"),
    "historically,": ("until {y},", "before {y},", "until the {d}s,", "before the {d}s,"),
    "traditionally,": ("until the {d}s,", "before {y},", "from {y} on,"),
    "in the beginning,": ("in {y},", "in {M} {y},", "at first, in {y},"),
}
_TIME_RE = re.compile(r"\b(" + "|".join(re.escape(k[:-1]) + r"(?=,)" if k.endswith(",") else re.escape(k)
                                        for k in _TIMES) + r")\b", re.IGNORECASE)
_YEAR_DETAIL_RE = re.compile(r"(?<![\w,] )\b(in|since|until|by|from)( )(1[6-9]\d\d|20[0-2]\d)\b(?![\w%]|[.,]\d)")
_YEAR_DETAILS = ("{M}", "late", "early", "mid-", "the spring of", "the autumn of", "the summer of", "{M} of")


_FIRST_PERSON_RE = re.compile(r"\b(?:I|me|my|we|our|us)\b")


def _first_person_near(doc: Doc, at: int) -> bool:
    """The sentence around ``at`` speaks of the speaker: a date invented there dates the reply's own
    (made-up) story, not a checkable claim."""
    start, stop = _sentence_around(doc, at)
    return bool(_FIRST_PERSON_RE.search(doc.text, start, stop))


def _sentence_around(doc: Doc, at: int) -> tuple[int, int]:
    text = doc.text
    start = max(text.rfind(". ", 0, at), text.rfind("\n", 0, at)) + 1
    stop = min(i for i in (text.find(". ", at), text.find("\n", at), len(text)) if i >= 0)
    return start + (len(text[start:stop]) - len(text[start:stop].lstrip())), stop


_HEADING_MARK_RE = re.compile(r"^\s*(?:#+\s*|\*\*|(?:[IVXLC]+|[A-Za-z]|\d+)[.)]\s+|[-*•]\s+)*")
_TITLE_WORD_RE = re.compile(r"[A-Za-z][\w'’-]*")


def _heading_at(doc: Doc, at: int) -> bool:
    """The line around ``at`` is a heading or title ("VIII. Additional Topics for Remote Managers",
    "Role Play Scenario A2: Tourist Missing Their Flight"): one ending in a colon, or in title case
    without a sentence's end ("1. Ingestion: Birds eat ..." is a claim). A name invented there
    labels a section; it claims nothing (seed 6006)."""
    text = doc.text
    start = text.rfind("\n", 0, at) + 1
    stop = text.find("\n", at)
    line = text[start:stop if stop >= 0 else len(text)].strip()
    line = line[_HEADING_MARK_RE.match(line).end():].strip("*# ")
    if not line:
        return False
    if line.endswith(":"):
        return True
    if re.search(r"[.!?](?:\s|$)", line):
        return False
    words = [w for w in _TITLE_WORD_RE.findall(line) if len(w) > 3]
    return len(words) >= 2 and sum(w[0].isupper() for w in words) >= 0.6 * len(words)


def _no_claim_at(doc: Doc, at: int) -> bool:
    """A remark (see ``_remark_at``) or a heading: invented material there falsifies no claim."""
    return _remark_at(doc, at) or _heading_at(doc, at)


def _remark_at(doc: Doc, at: int) -> bool:
    """The sentence around ``at`` is a remark about the task's own input ("The sentence does not
    say ...", "the premise", "PersonX") or about the reply ("These are just a few examples", "Here
    are a few ..."): invented material there is no claim about the world (hand-read samples: the
    commonest miss of the hallucination negatives)."""
    start, stop = _sentence_around(doc, at)
    return bool(_TASK_INPUT_RE.search(doc.text, start, stop) or _ABOUT_THE_REPLY_RE.match(doc.text, start))


# answers to a task about a given text (natural language inference, "In this task, you are given
# ..."): nearly every sentence is about that text, so no invented name, figure, date or source
_GIVEN_TEXT_TASK_RE = re.compile(r"\b(?:Premise|Hypothesis)\s*:|\bIn this task\b|\bGiven the (?:rationale|sentence|"
                                 r"passage|text)\b|\bRead the (?:passage|text)\b|"
                                 # v5 (seed 6006): NLI without labels, "Given material:", "Answer according
                                 # to: <text>", "I will present to you a bug report ..."
                                 r"\bCan we conclude (?:from|that)\b|\bit is not possible to tell\b|"
                                 r"\bgiven material\b|\bAnswer according to\s*:|\bI will (?:present|give|provide|show) "
                                 r"(?:to )?you (?:a|an|the|some)\b|\bthe following (?:passage|text|article|paragraph|"
                                 r"excerpt|report|document|material|story)\b", re.IGNORECASE)

# a request for a document the user will use as their own (an email, website copy, a review, an opening
# statement, a role play ...), or to imagine one scene: material invented there is the composition's
# content, not a false claim about the world (seed 6006: 6 of the 16 misses)
_COMPOSITION_RE = re.compile(
    r"\b(?:write|writing|create|draft|compose|generate|prepare|craft|design|make|produce|give me)\b[^.?!\n]{0,80}?"
    r"\b(?:e-?mails?|letters?|websites?|web ?pages?|landing pages?|(?:ad|marketing|web|website|sales) copy|"
    r"reviews?|(?:opening|closing|personal|mission|vision) statements?|speech(?:es)?|bios?|biograph(?:y|ies)|"
    r"ads?|advertisements?|press releases?|(?:product|job) descriptions?|proposals?|invitations?|announcements?|"
    r"newsletters?|messages?|resumes?|cover letters?|profiles?|pitch(?:es)?|role[- ]?plays?|scenarios?|"
    r"conversations?|dialogues?|brochures?|flyers?|captions?|testimonials?|outlines? for|agendas?)\b|"
    r"\b(?:describe|imagine|invent)\s+(?:a|an|your)\s+(?:[a-z]+\s+){0,2}(?:performance|scene|day|place|character|"
    r"world|setting|experience|trip|vacation|dream|moment|party|meal|city|planet|creature)\b", re.IGNORECASE)


def _no_world_claims(doc: Doc) -> bool:
    """A record whose reply makes no claims about the world that invented material would falsify:
    an answer about a given text, a story or other fiction, or a composition the user asked for. A
    worked solution (a stated final answer) is none of the last two: "James writes a 3-page letter
    to 2 friends" is a word problem, and its person is the problem's."""
    return bool(doc.question) and _question_without_world_claims(doc.question[:3000], doc.final_answer is not None)


# words one of which every composition request holds (a substring test first: most questions
# are none, and the pattern's word window is slow to run over every question of a data set)
_COMPOSITION_HINTS = ("mail", "letter", "web", "page", "copy", "review", "statement", "speech", "bio", " ad",
                      "release", "description", "proposal", "invitation", "announcement", "message", "resume",
                      "profile", "pitch", "play", "scenario", "conversation", "dialogue", "brochure", "flyer",
                      "caption", "testimonial", "outline", "agenda", "describe", "imagine", "invent")


@lru_cache(maxsize=4096)
def _question_without_world_claims(q: str, worked: bool) -> bool:
    if _GIVEN_TEXT_TASK_RE.search(q):
        return True
    if worked:
        return False
    if _CREATIVE_RE.search(q[:2000]):
        return True
    low = q.lower()
    return any(h in low for h in _COMPOSITION_HINTS) and bool(_COMPOSITION_RE.search(q))


def make_invented_date(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """A vague time made an invented date ("in recent years" -> "in 2011"), or an invented
    month or season added to a stated year ("in 1889" -> "in March 1889")."""
    if _no_world_claims(doc):
        return None
    times = [m for m in _prose_sites(doc, _TIME_RE, taken, 1) if not _first_person_near(doc, m.start(1))
             and not _no_claim_at(doc, m.start(1))]
    years = [m for m in _prose_sites(doc, _YEAR_DETAIL_RE, taken, 2) if not _no_claim_at(doc, m.start(2))]
    if not times and not years:
        return None
    if times and (not years or rng.random() < 0.7):
        m = rng.choice(times)
        old = m.group(1)
        key = old.lower() + ("," if old.lower() + "," in _TIMES else "")
        y = year(rng, 1935, 2019)
        fill = {"y": y, "d": (y // 10) * 10, "k": rng.randint(6, 40), "M": rng.choice(lex.MONTHS),
                "f": rng.randint(2030, 2060)}
        options = [t.format(**fill).rstrip(",") for t in _TIMES[key]]
        new = _capital_like(pick_by_length(rng, options, old, _longer(rng, 0.45)), old)
        return [Edit(m.start(1), m.end(1), new, "invented_date", {"kind": "time", "was": old})]
    m = rng.choice(years)
    detail = rng.choice(_YEAR_DETAILS).format(M=rng.choice(lex.MONTHS))
    if m.group(1).lower() != "in" and not detail[:1].isupper():
        detail = rng.choice(lex.MONTHS)
    sep = "" if detail.endswith("-") else " "
    return [Edit(m.start(2), m.end(2), f" {detail}{sep}", "invented_date", {"kind": "year", "year": m.group(3)})]


_AGENTS = ("researchers|scientists|experts|economists|historians|psychologists|doctors|physicians|"
           "engineers|analysts|scholars|critics|archaeologists|biologists|astronomers|nutritionists|"
           "officials|educators|teachers|specialists|statisticians|geologists|chemists|physicists|"
           "sociologists|linguists|designers|developers|studies|surveys|reports|experiments|trials|research")
_AGENT_RE = re.compile(rf"\b((?i:{_AGENTS}))\b(?! (?:at|from|in|of|by|led|such|like)\b)")
_AGENT_VERB_RE = re.compile(
    rf"\b((?i:{_AGENTS}))( (?:have|generally|often|now|also)?\s?)"
    r"(say|believe|suggest|show|agree|think|argue|recommend|estimate|found|note|warn|claim|report|"
    r"indicate|shown|found|noted|suggested|confirmed|confirm|predict|predicted)\b")
_SINGULAR_VERB = {"say": "says", "believe": "believes", "suggest": "suggests", "show": "shows",
                  "agree": "agrees", "think": "thinks", "argue": "argues", "recommend": "recommends",
                  "estimate": "estimates", "note": "notes", "warn": "warns", "claim": "claims",
                  "report": "reports", "indicate": "indicates", "confirm": "confirms", "predict": "predicts"}
_PAST_VERBS = ("noted", "reported", "argued", "showed", "found", "wrote", "observed", "documented",
               "pointed out", "concluded", "estimated", "recorded", "claimed", "suggested", "stressed")
_DOCS = ("report", "survey", "review", "paper", "audit", "census", "handbook", "study", "memo", "guide",
         "lecture", "monograph", "field notes", "white paper", "working paper", "bulletin")


def _source(rng: Random) -> str:
    """An invented person, body or document."""
    kind = rng.randrange(4)
    if kind == 0:
        return person(rng)
    if kind == 1:
        return institution(rng)
    if kind == 2:
        return f"{surname(rng)}'s {rng.choice(_DOCS)}"
    return f"the {place(rng)} {rng.choice(_DOCS)}"


def _attribution(rng: Random) -> str:
    """An invented reference in citation form, names only: glue words, years and page numbers
    each became the classifier's cue when references had them."""
    kind = rng.randrange(5)
    if kind == 0:
        return f" ({surname(rng)})"
    if kind == 1:
        return f" ({surname(rng)} & {surname(rng)})"
    if kind == 2:
        return f" [{surname(rng)}]"
    if kind == 3:
        return f" ({person(rng)})"
    return f" ({surname(rng)}; {surname(rng)})"


_TASK_INPUT_RE = re.compile(r"\b(?:[Tt]he|[Tt]his|[Tt]hat|[Gg]iven) (?:sentence|premise|hypothesis|passage|statement|"
                            r"text|question|prompt|input|task|review|paragraph|phrase|context|initial statement|"
                            r"options?|tweet|post|argument|material|excerpt|article|document|(?:bug )?report|"
                            r"description|story|conversation|dialogue|table|chart)\b|\bPerson[XYZ]\b|"
                            r"\b(?:[Tt]he|[Ii]nitial) statement\b|"
                            # v5: "the given information", "the provided data", "the above ..." (seed 6006)
                            r"\b(?:[Tt]he|[Tt]his|[Tt]hese) (?:given|provided|above|following|mentioned) \w+|"
                            r"\b(?:[Bb]ased on|[Aa]ccording to) (?:the|this) (?:information|details?|data)\b")
_ABOUT_THE_REPLY_RE = re.compile(r"(?:These|Those|They|This|That) (?:are|is) (?:just |only |some |a few |merely )*"
                                 r"(?:examples?|suggestions?|ideas?|options|a few|a starting point|a sample)\b|"
                                 r"Here (?:are|is)\b|(?:Thank you|Thanks) for\b|I hope (?:this|these|that)\b")
_COMPOSED_RE = re.compile(r"\b(?:mission|vision) statements?\b|\bslogans?\b|\btaglines?\b|\bmottos?\b", re.IGNORECASE)
_FACTUAL_RE = re.compile(r"\b(?:is|are|was|were|has|have|had|can|contains?|helps?|causes?|makes?|leads?|"
                         r"became|remains?|includes?|provides?|produces?|reduces?|increases?)\b")
_PERSONAL_RE = re.compile(r"\b(?:I|[Mm]e|[Mm]y|[Yy]ou|[Yy]our|[Ww]e|[Oo]ur|[Uu]s|[Pp]lease|[Ll]et)\b|^\s*[a-z]")
_CREATIVE_RE = re.compile(r"\b(?:story|poem|script|sentence|song|lyrics|dialogue|fiction|rewrite|paraphrase|"
                          r"translate|haiku|joke|scene|character|essay|letter|tweet|slogan)s?\b", re.IGNORECASE)


_FRAGMENT_END_RE = re.compile(r"\b(?:is|are|was|were|do|does|did|can|could|will|would|has|have|had|should|may|might|"
                              r"not)$", re.IGNORECASE)


def make_invented_source(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """An invented source for a claim: "experts say" -> "Kastwick says", "researchers" ->
    "Kelmarton researchers", or an invented reference at the end of a factual claim ("... (Kastwick
    & Brelo)."). Never on a one-word answer, a request or fiction."""
    text = doc.text
    if _no_world_claims(doc):
        return None
    verbs = [m for m in _prose_sites(doc, _AGENT_VERB_RE, taken) if not _no_claim_at(doc, m.start())]
    agents = [m for m in _prose_sites(doc, _AGENT_RE, taken, 1) if not _no_claim_at(doc, m.start(1))]
    pick = rng.random()
    if verbs and pick < 0.5:
        m = rng.choice(verbs)
        verb = m.group(3)
        aux = m.group(2)
        who = rng.choice((surname(rng), person(rng), f"{surname(rng)}'s team", f"the {place(rng)} group"))
        if verb in _SINGULAR_VERB and not aux.strip():
            verb = _SINGULAR_VERB[verb]
        aux = aux.replace("have", "has")
        new = _capital_like(who, m.group(1)) + aux + verb
        return [Edit(m.start(), m.end(), new, "invented_source", {"kind": "agent", "source": who})]
    if agents and pick < 0.8:
        m = rng.choice(agents)
        agent = m.group(1)
        # the invented name only, no glue ("researchers at ...", "research by ..." became cues)
        options = [f"{place(rng)} {agent.lower()}", f"{surname(rng)}'s {agent.lower()}",
                   f"{place(rng)} {agent.lower()}", f"{surname(rng)} {agent.lower()}"]
        new = _capital_like(rng.choice(options), agent)
        return [Edit(m.start(1), m.end(1), new, "invented_source", {"kind": "agent", "was": agent})]
    # an invented reference at the end of a claim (or of the whole text when it is one line)
    ends = []
    creative = bool(_CREATIVE_RE.search(doc.question[:2000]))
    claims = [] if creative else [s for s in doc.claim_sentences(60) if not _PERSONAL_RE.match(text, s.body)]
    # in a worked solution every step states a fact; elsewhere, a sentence with a stative verb
    factual = [s for s in claims if (doc.final_answer is not None or _FACTUAL_RE.search(text, s.body, s.end))
               and not _PERSONAL_RE.search(text, s.body + 1, s.end)]
    if len(doc.sentences) < 2 or _COMPOSED_RE.search(doc.question[:2000]):
        factual = []  # a one-line (label) answer, or a mission statement: no claim a source could back
    for s in factual:  # a source backs a claim: not a one-word label, a request or a line of fiction
        if _TASK_INPUT_RE.search(text, s.body, s.end) or _ABOUT_THE_REPLY_RE.match(text, s.body):
            continue  # "The sentence does not provide enough context", "These are just examples": remarks
        if _heading_at(doc, s.body) or _FRAGMENT_END_RE.search(text[s.body:s.end].rstrip(TERMINAL_CHARS + "\"' ")):
            continue  # v5: a heading, or a fragment ending in its auxiliary ("Yes, there are"): no claim to back
        end = s.end
        while end > s.body and text[end - 1] in TERMINAL_CHARS + "\"'":
            end -= 1
        if end > s.body and _free(end, end, taken) and text[end - 1].isalnum():
            ends.append(end)
    if not ends:
        return None
    end = rng.choice(ends)
    cite = _attribution(rng)
    return [Edit(end, end, cite, "invented_source", {"kind": "reference", "inserted": cite.strip(" ,")})]


_WORD_CAP_RE = re.compile(r"(?<![\w'’])([A-Z][a-z]{2,})(?!\w)")
_NAMEABLE = ("method|theory|technique|approach|algorithm|principle|effect|framework|formula|protocol|strategy|"
             "recipe|diet|exercise|scale|tradition|festival|ritual|syndrome|paradox|treaty|routine|workout|dance")
_NAMEABLE_RE = re.compile(rf"\b(?i:(the|a|an|this)) ({_NAMEABLE})\b(?! of\b)")

_NAME_CONTEXT_RE = re.compile(
    r"(?:\b[a-z]+,? |\d |^|[.!?] )([A-Z][a-z]{2,})(?='s\b| (?:[a-z]+(?:s|ed)|sold|bought|had|got|made|went|took|gave|"
    r"ran|ate|saw|paid|spent|found|won|lost|read|wrote|drove|left|kept|put|sent|built|began|came|did|said|told|"
    r"sat|grew|knew|drew|flew|threw|swam|sang|can|will|wants|needs|and [A-Z][a-z]+ (?:[a-z]+(?:s|ed)|have|had))\b)",
    re.MULTILINE)


_IMPERATIVES = frozenset("help let make write find give tell take use consider imagine suppose assume create provide "
                        "explain describe list generate translate read answer show compare name identify choose "
                        "select classify summarize rewrite detect determine calculate given based include keep "
                        "ask think look check add remove turn".split())


@lru_cache(maxsize=4096)
def _names_in(question: str) -> tuple[str, ...]:
    """Capitalized words written mid-sentence after a lower-case word and before one, never part
    of a longer capitalized name, not months or known places: in word problems, the people."""
    found = []
    for m in _NAME_CONTEXT_RE.finditer(question):
        w = m.group(1)
        start = m.start(1)
        if (start == 0 or question[start - 2:start].strip() in TERMINAL_CHARS or question[start - 1] == "\n") \
                and w.lower() in _IMPERATIVES:
            continue  # "Help us ..." opens a sentence: a verb, not a person
        if w.lower() in lex.COMMON_STARTERS or w.lower() in STOPWORDS or w in lex.MONTHS or w in lex.WEEKDAYS \
                or w in lex.ENTITY_TO_CATEGORY or w.lower() in _FUNCTION_WORDS:
            continue
        found.append(w)
    return tuple(w for w in dict.fromkeys(found) if not _not_a_person(question, w))


_TITLES = frozenset("Mr Mrs Ms Miss Mx Dr Aunt Uncle Grandma Grandpa Coach".split())


def _not_a_person(text: str, w: str) -> bool:
    """``w`` is used in ``text`` as something other than a person: after an article or another
    determiner ("the Earth's plates", "the Explorer"), or inside a longer capitalized name ("Email
    Address", "Arc'teryx Men's Skyline"), a title ("Mr.") apart. A capitalized question word read as
    a person and replaced garbled a thing's name (seed 6006: 3 of the 16 misses)."""
    at = text.find(w)
    while at >= 0:
        end = at + len(w)
        if (at and (text[at - 1].isalnum() or text[at - 1] in "_'’")) or (end < len(text) and
                                                                          (text[end].isalnum() or text[end] == "_")):
            at = text.find(w, end)
            continue  # part of a longer word
        before = text[max(0, at - 30):at]
        prev = _PREV_WORD_RE.search(before)
        nxt = _NEXT_CAPITAL_RE.match(text, end, end + 30)
        if prev and prev.group(1).lower() in _DETERMINERS:
            return True
        if prev and prev.group(1)[:1].isupper() and not prev.group(1).endswith((".", ",")) \
                and prev.group(1).rstrip(".") not in _TITLES and not _FIRST_WORD_RE.search(before) \
                or prev and _CAPITAL_ELISION_RE.match(prev.group(1)):
            return True  # "Email Address", "Arc'teryx Men's"; a sentence's first word before it is fine
        if nxt and nxt.group(1) != "I" and not nxt.group(1).startswith(("And", "Or")):
            return True  # "Address Line", "Men's Skyline"
        at = text.find(w, end)
    return False


_PREV_WORD_RE = re.compile(r"([\w'’.]+)\s+$")
_NEXT_CAPITAL_RE = re.compile(r"(?:'s|’s)?\s([A-Z][\w'’]*)")
_FIRST_WORD_RE = re.compile(r"(?:^|[.!?:\n])\s*\S+\s+$")
_CAPITAL_ELISION_RE = re.compile(r"[A-Z]\w*['’][a-z]{2,}")


_DETERMINERS = frozenset("the a an this these those our your their its my".split())


def _people(doc: Doc) -> list[str]:
    """The question's people (see ``_names_in``) that the response mentions by name, as people."""
    if not doc.question:
        return []
    found = doc.sites.get(("people", 0))
    if found is None:
        found = doc.sites[("people", 0)] = [w for w in _names_in(doc.question[:3000]) if re.search(
            rf"(?<![\w'’]){w}(?!\w)", doc.text) and not _not_a_person(doc.text, w)]
    return list(found)


_PROPER_RE = re.compile(r"(?<=[a-z,;] )([A-Z][a-z]{2,}(?: [A-Z][a-z]{2,}){0,2})(?![\w'’-])")


_GENERIC_CAPITALIZED = frozenset("sentence name company hypothesis premise answer option step example question "
                                 "output input solution note table figure chapter section part context "
                                 "explanation statement response task problem user assistant true false "
                                 "yes no none".split())


_NUMBERED_HEADING_RE = re.compile(r"^\s*(?:[-*•]\s*)?(?:Step|Phase|Part|Stage|Section|Chapter|Day|Week|Tip|"
                                  r"Option|Level|Module|Lesson)\s*\d+\s*[:.)–-]")
_LIST_TITLE_RE = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+[^.!?]{0,40}$")
_LOWER_WORD_BEFORE_RE = re.compile(r"(?:^|\s)[a-z]+[,;]? $")


def _proper_names(doc: Doc, taken: list[Edit]) -> list[re.Match[str]]:
    """Capitalized names written mid-sentence (after a lower-case word), in prose."""
    out = []
    text = doc.text
    for m in _prose_sites(doc, _PROPER_RE, taken, 1):
        first = m.group(1).split(" ", 1)[0]
        line_start = text.rfind("\n", 0, m.start(1)) + 1
        head = text[line_start:m.start(1)]
        tail = text[m.end(1):text.find("\n", m.end(1)) if "\n" in text[m.end(1):] else len(text)]
        if not _LOWER_WORD_BEFORE_RE.search(head) or "[" in head and "]" not in head or \
                head.count('"') % 2 or head.lstrip().startswith(("#", "**", "|")) or \
                ":" in tail[:40] and not re.search(r"[.!?]", tail[:tail.find(":")]) or \
                _LIST_TITLE_RE.match(head) or _NUMBERED_HEADING_RE.match(head):
            continue  # a title, a heading, a label, a [placeholder] or a quotation: not a claim's name
        if first.lower() in lex.COMMON_STARTERS or first.lower() in STOPWORDS or first in lex.MONTHS \
                or first in lex.WEEKDAYS or first.lower() in _GENERIC_CAPITALIZED:
            continue
        if m.group(1) in lex.ENTITY_TO_CATEGORY or first in lex.ENTITY_TO_CATEGORY or first in lex.COMMON_NAMES \
                or " " not in m.group(1) and first.endswith("s"):
            # a well-known name (Python, Google, Ireland) or a plural ("Americans", "Microservices")
            # recurs across a data set, so its loss was a cue (and an entity has its correctness swap)
            continue
        if re.match(r" \d", text[m.end(1):m.end(1) + 2]):
            continue  # "Grade 5", "Phase 2": a label with its number, not a name
        out.append(m)
    return out


def _invented_like(rng: Random, old: str) -> str:
    """An invented name shaped like ``old``: one word for one, a full name for two or more."""
    words = old.count(" ") + 1
    options = [person(rng) if words > 1 else rng.choice((surname(rng), place(rng), first_name(rng)))
               for _ in range(4)]
    return pick_by_length(rng, options, old, _longer(rng, 0.5))


_PRONOUN_RE = re.compile(r"(?:^|(?<=[.!?] )|(?<=\n))(He|She|His|Her)\b(?! own\b)|(?<=[a-z,] )(he|she|his)\b"
                         r"(?! own\b)", re.MULTILINE)


def _quoted_at(doc: Doc, at: int) -> bool:
    """Inside a quotation on its line (a quoted hypothesis or task text is not the reply's claim)."""
    line = doc.text[doc.text.rfind("\n", 0, at) + 1:at]
    return line.count('"') % 2 == 1 or line.count("“") > line.count("”")


_ARTICLE_BEFORE_RE = re.compile(r"(?<![\w'’])([Aa]n?) $")


def _with_article(doc: Doc, start: int, end: int, new: str, info: dict) -> Edit:
    """The invented name, and the article before it made to agree ("an Energy Audit" -> "a
    Quemuie ..." rather than "an Quemuie ...")."""
    m = _ARTICLE_BEFORE_RE.search(doc.text, max(0, start - 4), start)
    if m:
        article = "an" if new[:1].lower() in "aeiou" else "a"
        if article != m.group(1).lower():
            return Edit(m.start(1), end, f"{_capital_like(article, m.group(1))} {new}", "invented_name", info)
    return Edit(start, end, new, "invented_name", info)


def make_invented_name(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """An invented person, place or named thing put into a claim: in a word problem one mention
    of its person becomes an invented one ("She sold" -> "Brelo sold"); a name
    in the text becomes an invented one at one mention ("in Yangzhou" -> "in Blefean"); or a
    method, theory, recipe ... gets an invented name ("the method" -> "the Kastwick method")."""
    if _no_world_claims(doc):
        return None
    people = _people(doc)
    mentions = []
    for w in people:
        for m in re.finditer(rf"(?<![\w'’]){re.escape(w)}(?!\w)", doc.masked):
            if m.end() <= doc.tail_start and doc.in_prose(m.start(), m.end()) and _free(m.start(), m.end(), taken) \
                    and not _quoted_at(doc, m.start()) and not _no_claim_at(doc, m.start()):
                mentions.append(m)
    # a pronoun only where the response never names its person: "he" and "she" are among a word
    # problem's commonest words, and one of them gone was the strongest cue of these negatives
    # (weight -3 for "he" on GSM8K); a real name gone is a rarer word, often unique to the record
    if not mentions and doc.question and _names_in(doc.question[:3000]):
        mentions = [m for m in _prose_sites(doc, _PRONOUN_RE, taken)  # "She sold ..." about Natalia
                    if not _quoted_at(doc, m.start(m.lastindex)) and not _no_claim_at(doc, m.start(m.lastindex))]
    if mentions and rng.random() < 0.9:
        m = rng.choice(mentions)
        old = m.group(m.lastindex) if m.re is _PRONOUN_RE else m.group()
        if m.re is _PRONOUN_RE:
            at = m.start(m.lastindex)
            name = first_name(rng)
            own = old.lower() in ("his", "her", "their")
            new = f"{name}'s" if own else name
            return [Edit(at, at + len(old), new, "invented_name", {"kind": "person", "was": old})]
        options = [first_name(rng), first_name(rng), f"{first_name(rng)} {surname(rng)}", first_name(rng),
                   surname(rng)]
        new = pick_by_length(rng, options, old, _longer(rng, 0.4))
        return [_with_article(doc, m.start(), m.end(), new, {"kind": "person", "was": old})]
    if _creative(doc):
        return None  # an invented name in a story is no hallucination
    names = [m for m in _proper_names(doc, taken) if not _no_claim_at(doc, m.start(1))]
    nameable = [m for m in _prose_sites(doc, _NAMEABLE_RE, taken) if not _no_claim_at(doc, m.start())]
    if names and (not nameable or rng.random() < 0.6):
        m = rng.choice(names)
        old = m.group(1)
        new = _invented_like(rng, old)
        # one mention only: the name itself stays in the text, so its absence is no cue
        return [_with_article(doc, m.start(1), m.end(1), new, {"kind": "name", "was": old})]
    if not nameable:
        return None
    m = rng.choice(nameable)
    article = m.group(1)
    name = surname(rng) if rng.random() < 0.75 else f"{surname(rng)}-{surname(rng)}"
    new_article = "a" if article.lower() == "an" else article
    new = f"{_capital_like(new_article, article)} {name} {m.group(2)}"
    return [Edit(m.start(), m.end(), new, "invented_name", {"kind": "named", "name": name})]


_CALL_RE = re.compile(r"(?<![\w.])((?:[A-Za-z_]\w*\.)*)([a-z_][A-Za-z0-9_]*)(?=\()")
_API_SUFFIXES = ("safe", "all", "fast", "async", "strict", "v2", "ex", "batch", "inplace", "auto", "checked",
                 "cached", "bulk", "sorted", "unique", "lazy", "raw", "deep", "now", "multi")
_API_PREFIXES = ("auto", "fast", "safe", "smart", "deep", "quick", "bulk", "raw", "try", "get", "fetch",
                 "lazy", "multi", "strict", "parallel")
_KEYWORD_LIKE = frozenset("if for while return print def class elif with and or not in is lambda yield assert "
                          "super self cls isinstance".split())


def make_invented_api(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    """A real call in code renamed to an invented API that does not exist (``json.loads(s)`` ->
    ``json.loads_strict(s)``, ``sorted(x)`` -> ``fast_sorted(x)``); functions the text defines
    itself are left alone."""
    text = doc.text
    defined = set(re.findall(r"\b(?:def|function|class)\s+(\w+)", text))
    sites = [m for m in _code_sites(doc, _CALL_RE) if m.group(2) not in defined and m.group(2) not in
             _KEYWORD_LIKE and not m.group(2).startswith("__") and _free(m.start(2), m.end(2), taken)]
    if not sites:
        return None
    m = rng.choice(sites)
    old = m.group(2)
    if rng.random() < 0.5:
        new = f"{old}_{rng.choice(_API_SUFFIXES)}"
    else:
        new = f"{rng.choice(_API_PREFIXES)}_{old}"
    return [Edit(m.start(2), m.end(2), new, "invented_api", {"kind": "api", "was": old})]


# ----------------------------------------------------------------------------------------------
# registry

def _has_code(doc: Doc) -> bool:
    return bool(doc.code_regions)


def _short(doc: Doc) -> bool:
    """A short answer without numbers or a label (those have their own perturbations)."""
    return (0 < doc.num_tokens <= 6 and bool(doc.question) and not any(c.isdigit() for c in doc.text)
            and not _answer_sites(doc))


C, L, H = ErrorType.CORRECTNESS, ErrorType.LOGIC, ErrorType.HALLUCINATION
PERTURBATIONS: tuple[Perturbation, ...] = (
    Perturbation("calculation", C, 3, lambda d: bool(d.steps), make_calculation, make_calculation.__doc__),
    Perturbation("operand", C, 2, lambda d: any(s.verified for s in d.steps), make_operand,
                 make_operand.__doc__),
    Perturbation("final_answer", C, 2, lambda d: d.final_answer is not None, make_final_answer,
                 make_final_answer.__doc__),
    Perturbation("number", C, 2, lambda d: bool(_prose_numbers(d)), lambda d, r, t: make_number(d, r, t),
                 "A number in the text changed; a value used by later steps is carried through them."),
    Perturbation("date", C, 2, lambda d: bool(_YEAR_RE.search(d.text) or _CENTURY_RE.search(d.text)
                                             or _MONTH_DAY_RE.search(d.text)), make_date, make_date.__doc__),
    Perturbation("unit", C, 2, lambda d: bool(_UNIT_RE.search(d.masked)), make_unit, make_unit.__doc__),
    Perturbation("entity", C, 3, lambda d: bool(_ENTITY_RE.search(d.text) and _entity_sites(d)), make_entity,
                 make_entity.__doc__),
    Perturbation("swapped_facts", C, 3, lambda d: bool(_swap_sites(d)), make_swapped_facts,
                 make_swapped_facts.__doc__),
    Perturbation("negation", C, 1, lambda d: bool(_NEGATABLE_RE.search(d.text)), make_negation,
                 make_negation.__doc__),
    Perturbation("answer_choice", C, 4, lambda d: bool(_answer_sites(d)), make_answer_choice,
                 make_answer_choice.__doc__),
    Perturbation("answer_swap", C, 3, _short, make_answer_swap, make_answer_swap.__doc__),
    Perturbation("code_constant", C, 2, _has_code, make_code_constant, make_code_constant.__doc__),
    Perturbation("code_operator", C, 3, _has_code, make_code_operator, make_code_operator.__doc__),
    Perturbation("reordered_steps", L, 3, lambda d: bool(_dependent_lines(d) or _dependent_sentences(d)),
                 make_reordered_steps, make_reordered_steps.__doc__),
    Perturbation("premise_removed", L, 2, lambda d: bool(_premises(d)), make_premise_removed,
                 make_premise_removed.__doc__),
    Perturbation("reversed_cause", L, 3, lambda d: bool(_cause_sites(d)), make_reversed_cause,
                 make_reversed_cause.__doc__),
    Perturbation("reversed_conclusion", L, 1.5, lambda d: bool(_conclusions(d)), make_reversed_conclusion,
                 make_reversed_conclusion.__doc__),
    # off by default (rules VERSION 4): read by hand it was the weakest logic rule (the dropped clause
    # was often not needed by the claim), and the "if" it always took away was the logic negatives'
    # strongest cue (pairwise 0.92-1.00 on its pairs); "X if Y" -> "Y if X" (reversed_cause) keeps it
    Perturbation("dropped_condition", L, 1, lambda d: bool(_condition_sites(d)), make_dropped_condition,
                 make_dropped_condition.__doc__, default=False),
    Perturbation("swapped_connective", L, 1, lambda d: bool(_connective_sites(d)), make_swapped_connective,
                 make_swapped_connective.__doc__),
    Perturbation("wrong_conclusion", L, 1, lambda d: d.final_answer is not None and len(d.steps) > 1,
                 make_wrong_conclusion, make_wrong_conclusion.__doc__),
    Perturbation("code_reorder", L, 2, _has_code, make_code_reorder, make_code_reorder.__doc__),
    Perturbation("code_condition", L, 2, lambda d: bool(_code_sites(d, _CONDITION_RE)), make_code_condition,
                 make_code_condition.__doc__),
    Perturbation("invented_figure", H, 1, lambda d: bool(_QUANT_RE.search(d.masked)), make_invented_figure,
                 make_invented_figure.__doc__),
    Perturbation("invented_date", H, 1, lambda d: bool(_TIME_RE.search(d.masked) or _YEAR_DETAIL_RE.search(d.masked)),
                 make_invented_date, make_invented_date.__doc__),
    Perturbation("invented_name", H, 4, lambda d: bool(
        _people(d) or _NAMEABLE_RE.search(d.masked) or _PROPER_RE.search(d.masked)
        or d.question and _PRONOUN_RE.search(d.masked) and _names_in(d.question[:3000])),
                 make_invented_name, make_invented_name.__doc__),
    Perturbation("invented_source", H, 0.4, lambda d: d.in_prose(0, len(d.text)) or bool(_AGENT_RE.search(d.masked)),
                 make_invented_source, make_invented_source.__doc__),
    Perturbation("invented_api", H, 3, lambda d: bool(_code_sites(d, _CALL_RE)), make_invented_api,
                 make_invented_api.__doc__),
)


_COUNTER_BEFORE_RE = re.compile(r"(?:[Cc]onfidence(?: level)?:?|[Vv]erse|[Cc]hapter|[Ss]tep|[Pp]art|[Ss]ection|"
                                r"[Pp]hase|[Ll]evel|[Rr]ound|[Qq]uestion|[Oo]ption|[Vv]ersion|No\.|#|[Vv])\s*\(?$")


def _prose_numbers(doc: Doc) -> list[tuple[int, int]]:
    """Numbers in prose that are not a list marker, a worked step or the final answer."""
    text = doc.text
    regions = [(st.start, st.end) for st in doc.steps]
    fa = doc.final_answer
    out = []
    for s, e in doc.prose_numbers:
        if fa and s == fa[0] or any(a <= s < b for a, b in regions):
            continue
        line_start = text.rfind("\n", 0, s) + 1
        if not text[line_start:s].strip(" \t(") and text[e:e + 1] in (".", ")"):
            continue  # "1. " list marker
        if _COUNTER_BEFORE_RE.search(text, max(0, s - 14), s) or text.startswith("-on-", e):
            continue  # "Confidence: 95%", "Verse 2", "Step 3": a label, not a stated fact
        out.append((s, e))
    return out


def make_number(doc: Doc, rng: Random, taken: list[Edit]) -> list[Edit] | None:
    sites = [x for x in _prose_numbers(doc) if _free(x[0], x[1], taken)]
    if not sites:
        return None
    s, e = rng.choice(sites)
    old = doc.text[s:e]
    new = new_number(old, rng)
    if doc.text.startswith("%", e) and float(number_key(new)) > 100:  # a share stays a share
        new = format_like(max(0.0, float(number_key(old)) - rng.choice((5, 10, 15, 20))), old)
        if number_key(new) == number_key(old):
            new = format_like(float(number_key(old)) / 2, old)
    edits = {(s, e): Edit(s, e, new, "number", {"was": old})}
    _carry(doc, e, {number_key(old): new}, edits, "number")
    out = sorted(edits.values(), key=lambda x: x.start)
    return out if _all_free(out, taken) else None


BY_NAME: dict[str, Perturbation] = {p.name: p for p in PERTURBATIONS}
BY_TYPE: dict[ErrorType, tuple[Perturbation, ...]] = {
    t: tuple(p for p in PERTURBATIONS if p.error_type is t) for t in ErrorType
}
