"""What the edit from a reference to a response changed, and when that edit cannot be an error.

SeaPO's negative must be *more erroneous* than its positive. Some edits provably add no error, so
the judge may say ``absent`` for all three types; every other edit is described and left
``unknown`` for the other checks (final answers, rules evidence, the LLM judge) to decide.

The edit is measured on normalized tokens (:func:`seapo.inject.verify.tokens`: lower-cased words
and numbers; punctuation and white space dropped), as the verifier does. The common prefix and
suffix are stripped first and ``difflib`` aligns only the middle (edits are local; this keeps the
judge fast). With a confirmed rules record (``analyze(..., edits=...)``) the changed runs are the
record's own edits and no alignment is needed (the restated-question test is then skipped: a rules
negative is never one). The kinds, in the order they are tested:

* ``identical``: the same tokens. No error.
* ``truncation``: the response is a prefix of the reference (its last word may be cut). No error:
  cutting an answer short adds nothing false ("cannot be hallucination, not by itself correctness
  or logic").
* ``deletion``: the response is a subsequence of the reference (only deletions). No error, *unless*
  a short deleted run (at most :data:`SHORT_RUN` tokens, i.e. inside a sentence, not a whole
  sentence or block) removes a negation, a comparison or quantifier word, a claim word or a number:
  "X is not Y" -> "X is Y", "only some" -> "some", "3 + 4 = 7" -> "3 = 7" flip or break a statement.
  Those stay ``unknown`` (a false "absent" would silently drop a real error).
* ``restated_question``: the response is the question again: the question's tokens, in order,
  cover 80% of the response and half the question, and at most one token in ten is not the
  question's, none of them a number or a word that answers (yes/no, negations, true/false). It
  asserts nothing, so it holds no error (it is no answer either: that is the verifier's business,
  not an error type's).
* ``rewording``: insertions and substitutions that change no number (by value: ``1,000`` =
  ``1000``), no number word, no named entity (a capitalized word of the response that the reference
  does not hold, at a sentence start too unless it is a common sentence opener), no negation or
  yes/no (each of not/no/never/n't/.../yes added as often as removed), no comparison or quantifier word
  (:data:`COMPARISON_WORDS`), no claim word (:data:`CLAIM_WORDS`), moves no content (a content token,
  or yes/no/not, removed in one place and added in another: steps reordered, an answer moved),
  inserts no new clause (a pure insertion of more than :data:`SHORT_INSERT` tokens, or a
  substitution adding :data:`LONG_INSERT` or more content tokens the reference does not hold: a
  contradiction, an invented detail), and brings in no new content word: every content word a
  substitution adds is in the stance-neutral lexicon
  (:data:`NEUTRAL_WORDS`: intensifiers, hedges, discourse words) or a variant of a word it replaced
  (same first five letters: create -> creating), and a pure insertion adds only those or words the
  reference already holds, and a substitution keeps the content words it removes (or a variant of
  them) unless it only adds stop words: "The forests are destinations" -> "following" replaces
  content, though "following" is neutral. No error. This is deliberately narrow: "mammal" ->
  "reptile", or "positive" -> "negative" when both are options in the question or the reference, substitutes a
  content word, so it is ``unknown``, never a silent "absent". Negation is compared word by word
  (yes/no included): "does not" -> "does indeed" with "Yes" -> "No" is a flip, though the count of
  negation words is the same.
* ``content``: anything else; :meth:`EditAnalysis.describe` says what changed (numbers, entities,
  negation, comparison and claim words, new words, insertions, moved content).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from seapo.answers import number_key
from seapo.inject.rules._lexicon import COMMON_STARTERS
from seapo.inject.verify import STOPWORDS, tokens

__all__ = ["CLAIM_WORDS", "COMPARISON_WORDS", "EditAnalysis", "NEGATIONS", "NEUTRAL_WORDS", "analyze"]

SHORT_RUN = 5
"""A deleted run of at most this many tokens is inside a sentence (see the module docstring)."""
LONG_INSERT = 6
"""An inserted run with this many more content tokens than it replaced is new content."""
SHORT_INSERT = 2
"""A pure insertion of more tokens than this is a new clause ("That said, it is indeed X"), even
when it only repeats the reference's words."""
MOVED_MIN = 1
"""This many content tokens removed in one place and added in another: content moved (one is enough:
a moved "Confidence: 95%" line or a swapped pair of steps moves few content words)."""

NEGATIONS = frozenset("not no never cannot none nobody nothing neither nor nowhere without t".split())
"""Negation tokens (``t`` is the tail of n't: "isn't" -> ``isn``, ``t``)."""
COMPARISON_WORDS = frozenset(
    "more less fewer greater larger smaller bigger higher lower most least better worse best worst than "
    "above below over under exceed exceeds exceeded increase increases increased decrease decreases "
    "decreased before after earlier later first last only all every each some any many few several both "
    "either always sometimes often usually rarely seldom ever most mostly majority minority half twice "
    "double triple quarter third percent per equal equals same different unlike like faster slower "
    "longer shorter older younger cheaper richer".split())
"""Comparison and quantifier words: changing one changes what a statement claims."""
CLAIM_WORDS = frozenset(
    "because therefore thus hence consequently since so cause causes caused causing lead leads led result "
    "results resulted prove proves proved proven implies imply means mean true false correct incorrect "
    "wrong right must definitely certainly guaranteed impossible possible likely unlikely study studies "
    "research researchers according survey report reported found shows showed evidence proof fact facts "
    "known invented discovered founded born died".split())
"""Claim words: causal and epistemic words, and the vocabulary of sources and discoveries."""
NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand "
    "million billion trillion dozen".split())
NEUTRAL_WORDS = frozenset(
    "really very quite truly simply basically actually essentially overall generally additionally moreover "
    "furthermore however also still even well okay ok sure please thanks thank note let lets here now "
    "great good nice fun interesting important helpful useful engaging exciting wonderful excellent "
    "awesome fantastic amazing idea ideas tip tips way ways thing things step steps help helps helping "
    "hope glad happy certain just indeed clearly obviously kind sort bit lot lots pretty rather "
    "example examples instance following overview summary conclusion finally next".split())
"""Stance-neutral words a paraphrase adds without claiming anything new."""
_ANSWERING = frozenset("yes no not never true false correct incorrect right wrong".split()) | NEGATIONS
_POLARITY = NEGATIONS | {"yes"}
_CRITICAL = _POLARITY | COMPARISON_WORDS | CLAIM_WORDS | NUMBER_WORDS
_CAPITALIZED = re.compile(r"(?<![\w'’])[A-Z][^\W_]*")
_SENTENCE_END = re.compile(r"(?:^|[.!?:;]['\")\]]*)[ \t*#>\-•\d.)(]*$|\n[ \t*#>\-•\d.)(]*$")


def _is_number(token: str) -> bool:
    return token[0].isdigit()


@dataclass
class EditAnalysis:
    """The edit from a reference to a response (see the module docstring for the kinds)."""

    kind: str
    """identical, truncation, deletion, restated_question, rewording or content."""
    changed_tokens: int = 0
    """Tokens removed plus tokens added."""
    numbers_added: list[str] = field(default_factory=list)
    numbers_removed: list[str] = field(default_factory=list)
    entities_added: list[str] = field(default_factory=list)
    negation_changed: bool = False
    comparison_words: list[str] = field(default_factory=list)
    claim_words: list[str] = field(default_factory=list)
    number_words: list[str] = field(default_factory=list)
    new_words: list[str] = field(default_factory=list)
    replaced_words: list[str] = field(default_factory=list)
    """Substitutions whose removed content words the added side does not keep (``forests -> following``)."""
    inserted_runs: int = 0
    """Inserted runs of LONG_INSERT or more new content tokens (new sentences)."""
    moved_tokens: int = 0
    """Content tokens removed in one place and added in another."""
    critical_deletion: list[str] = field(default_factory=list)
    """Deletion-only edits: the meaning-bearing words a short deleted run removed."""

    @property
    def no_error(self) -> bool:
        """The edit provably adds no error of any type."""
        return self.kind in ("identical", "truncation", "deletion", "restated_question", "rewording")

    def describe(self) -> str:
        """One line: what kind of edit it is, and what it changed."""
        if self.kind == "identical":
            return "identical to the reference"
        if self.kind == "truncation":
            return "truncation of the reference (deletion only): adds nothing"
        if self.kind == "deletion":
            return "deletion only (a subsequence of the reference): adds nothing"
        if self.kind == "restated_question":
            return "restates the question: asserts nothing"
        if self.kind == "rewording":
            return "a rewording that changes no number, entity, negation, comparison or claim word"
        parts = []
        if self.critical_deletion:
            parts.append(f"deletion only, but a short deleted run removed {_show(self.critical_deletion)}")
        if self.numbers_added or self.numbers_removed:
            parts.append(f"numbers changed (-{_show(self.numbers_removed)} +{_show(self.numbers_added)})")
        if self.number_words:
            parts.append(f"number words changed ({_show(self.number_words)})")
        if self.entities_added:
            parts.append(f"entities added ({_show(self.entities_added)})")
        if self.negation_changed:
            parts.append("negation flipped")
        if self.comparison_words:
            parts.append(f"comparison/quantifier words changed ({_show(self.comparison_words)})")
        if self.claim_words:
            parts.append(f"claim words changed ({_show(self.claim_words)})")
        if self.inserted_runs:
            parts.append(f"{self.inserted_runs} new sentence(s) inserted")
        if self.moved_tokens:
            parts.append(f"order changed ({self.moved_tokens} content tokens moved)")
        if self.new_words:
            parts.append(f"new words ({_show(self.new_words)})")
        if self.replaced_words:
            parts.append(f"words replaced ({_show(self.replaced_words, 3)})")
        return "; ".join(parts) or "content changed"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v or k == "kind"}


def _show(words: list[str], limit: int = 6) -> str:
    head = ", ".join(words[:limit])
    return head + (f", +{len(words) - limit} more" if len(words) > limit else "") if words else "none"


def _entities(text: str) -> set[str]:
    """Lower-cased capitalized words that read as names: not at a sentence start, or at one but not
    a common sentence opener."""
    out = set()
    for m in _CAPITALIZED.finditer(text):
        word = m.group().lower()
        if word in STOPWORDS:
            continue
        at_start = _SENTENCE_END.search(text, max(0, m.start() - 12), m.start()) is not None or m.start() == 0
        if at_start and word in COMMON_STARTERS:
            continue
        out.add(word)
    return out


def _mostly_in(words: list[str], text: str) -> bool:
    """Nine in ten words occur in ``text`` as substrings (a cheap test before tokenizing the question)."""
    allowed = len(words) // 10
    for w in words:
        if w not in text:
            allowed -= 1
            if allowed < 0:
                return False
    return True


def _restates(response: list[str], question: list[str]) -> bool:
    """The response is the question again: the question's words in its order (matching blocks)
    cover 80% of the response and half the question, at most one word in ten is not the question's,
    and none of those is a number or a word that answers (yes/no, negations, true/false): a question
    that lists its options must not make "harder" -> "easier" a restatement."""
    if len(response) < 3 or not question:
        return False
    q = set(question)
    outside = [t for t in response if t not in q]
    if len(outside) > 0.1 * len(response) or any(_is_number(t) or t in _ANSWERING for t in outside):
        return False
    matcher = SequenceMatcher(None, response, question, autojunk=False)
    covered = sum(block.size for block in matcher.get_matching_blocks())
    return covered >= 0.8 * len(response) and covered >= 0.5 * len(question)


def analyze(reference: str, response: str, question: str | None = None,
            edits: list[tuple[str, str]] | None = None) -> EditAnalysis:
    """The edit from ``reference`` to ``response`` (see the module docstring).

    ``edits``: the (original, replacement) texts of a record already confirmed to turn the
    reference into the response exactly (rules evidence); the changed runs are then read from it
    instead of aligned by ``difflib`` (the same verdicts, several times faster)."""
    if edits is not None:
        a = tokens(reference)
        pairs = [(tokens(old), tokens(new)) for old, new in edits]
        pairs = [(old, new) for old, new in pairs if old != new]
        if not pairs:
            return EditAnalysis("identical")
        changed = sum(len(old) + len(new) for old, new in pairs)
        if all(not new for _, new in pairs):
            return _deletion([(old, False) for old, _ in pairs], changed)
        return _content(pairs, set(a), response, changed)
    a, b = tokens(reference), tokens(response)
    if a == b:
        return EditAnalysis("identical")
    n, m = len(a), len(b)
    p = 0
    limit = min(n, m)
    while p < limit and a[p] == b[p]:
        p += 1
    if p == m and m < n:
        return EditAnalysis("truncation", n - m)
    if p == m - 1 and m <= n and a[p].startswith(b[p]):
        return EditAnalysis("truncation", n - m + 1)
    s = 0
    while s < limit - p and a[n - 1 - s] == b[m - 1 - s]:
        s += 1
    a_mid, b_mid = a[p:n - s], b[p:m - s]
    if not b_mid:
        ops = [("delete", 0, len(a_mid), 0, 0)]
    elif not a_mid:
        ops = [("insert", 0, 0, 0, len(b_mid))]
    else:
        ops = [op for op in SequenceMatcher(None, a_mid, b_mid, autojunk=False).get_opcodes() if op[0] != "equal"]
    changed = sum((i2 - i1) + (j2 - j1) for _, i1, i2, j1, j2 in ops)

    if all(op[0] == "delete" for op in ops):
        return _deletion([(a_mid[i1:i2], p + i2 == n) for _, i1, i2, _, _ in ops], changed)

    if question and len(response) <= 2 * len(question) + 20 and _mostly_in(b, question.lower()) and \
            _restates(b, tokens(question)):
        return EditAnalysis("restated_question", changed)
    return _content([(a_mid[i1:i2], b_mid[j1:j2]) for _, i1, i2, j1, j2 in ops], set(a), response, changed)


def _deletion(runs: list[tuple[list[str], bool]], changed: int) -> EditAnalysis:
    """Deletion only: harmless unless a short run inside a sentence removed a meaning-bearing word.
    ``runs``: (deleted tokens, the run ends the text)."""
    critical: list[str] = []
    for run, at_end in runs:
        if len(run) <= SHORT_RUN and not at_end:
            critical += [t for t in run if t in _CRITICAL or _is_number(t)]
    if not critical:
        return EditAnalysis("deletion", changed)
    return EditAnalysis("content", changed, critical_deletion=critical)


def _content(pairs: list[tuple[list[str], list[str]]], ref_set: set[str], response: str,
             changed: int) -> EditAnalysis:
    """Insertions and substitutions (``pairs`` of removed, added tokens): a rewording or content."""
    removed: list[str] = []
    added: list[str] = []
    new_words: list[str] = []
    replaced: list[str] = []
    inserted_runs = 0
    for old, new in pairs:
        removed += old
        added += new
        old_content = [t for t in old if t not in STOPWORDS]
        new_content = [t for t in new if t not in STOPWORDS]
        fresh = [t for t in new_content if t not in ref_set]
        if len(fresh) - len(old_content) >= LONG_INSERT or (not old and len(new) > SHORT_INSERT):
            inserted_runs += 1
        stems = {t[:5] for t in old_content if len(t) >= 5}
        if old and new_content:
            new_stems = {t[:5] for t in new_content if len(t) >= 5}
            lost = [t for t in old_content if t not in NEUTRAL_WORDS and t not in new_content and not _is_number(t)
                    and not (len(t) >= 5 and t[:5] in new_stems)]
            if lost:
                replaced.append(f"{' '.join(lost[:4])} -> {' '.join(new_content[:4])}")
        for t in new_content:
            if t in NEUTRAL_WORDS or _is_number(t) or t in _CRITICAL or (len(t) >= 5 and t[:5] in stems):
                continue
            if not old and t in ref_set:
                continue  # a pure insertion repeating the reference's own words
            new_words.append(t)

    out = EditAnalysis("content", changed, new_words=list(dict.fromkeys(new_words)), inserted_runs=inserted_runs,
                       replaced_words=replaced)
    nums_a = [number_key(t) for t in added if _is_number(t)]
    nums_r = [number_key(t) for t in removed if _is_number(t)]
    if nums_a or nums_r:
        nums_added, nums_removed = Counter(nums_a), Counter(nums_r)
        out.numbers_added = sorted((nums_added - nums_removed).elements())
        out.numbers_removed = sorted((nums_removed - nums_added).elements())
    added_c, removed_c = Counter(added), Counter(removed)
    words = added_c.keys() | removed_c.keys()
    diff_words = {w for w in words if added_c[w] != removed_c[w]}
    out.negation_changed = not diff_words.isdisjoint(_POLARITY)
    out.comparison_words = sorted(diff_words & COMPARISON_WORDS)
    out.claim_words = sorted(diff_words & CLAIM_WORDS)
    out.number_words = sorted(diff_words & NUMBER_WORDS)
    moved = sum(min(added_c[w], removed_c[w]) for w in words if w not in STOPWORDS or w in _POLARITY)
    out.moved_tokens = moved if moved >= MOVED_MIN else 0
    candidates = {t for t in added if t[0].isalpha() and t not in ref_set and t not in STOPWORDS}
    if candidates:
        out.entities_added = sorted(_entities(response) & candidates)
    if not (out.numbers_added or out.numbers_removed or out.entities_added or out.negation_changed
            or out.comparison_words or out.claim_words or out.number_words or out.new_words
            or out.inserted_runs or out.moved_tokens or out.replaced_words):
        out.kind = "rewording"
    return out
