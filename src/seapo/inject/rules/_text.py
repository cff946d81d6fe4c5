"""Text analysis shared by the rules perturbations: code regions, lines, sentences, numbers,
arithmetic steps and the final answer. Computed lazily once per response (cheap regexes only)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import cached_property
from typing import Any

from seapo.answers import FINAL_ANSWER_RES, NUM, number_key
from seapo.inject.rules._lexicon import COMMON_STARTERS
from seapo.inject.verify import STOPWORDS, tokens

NUM_RE = re.compile(NUM)
# A number standing on its own (not part of an identifier, version, date like 3/4, or decimal).
PROSE_NUM_RE = re.compile(rf"(?<![\w.,/\-^])({NUM})(?![\w/^]|[.,]\d)")
FENCE_RE = re.compile(r"^[ \t]*(```|~~~)([^\n`]*)$", re.MULTILINE)
CODE_LINE_RE = re.compile(
    r"^\s*(?:def |class |import |from \S+ import|return\b|elif\b|else:|try:|except\b|for .*:$|"
    r"while .*:$|if .*:$|print\(|#include|public |private |function\b|const |let |var |\}|\{$)"
    r"|.*[;{,(\[]\s*$|^\s*[\]})]|^\s*[\w.\[\]]+\s*[+\-*/]?=\s*\S"
)
_CODE_HINT_RE = re.compile(r"^[ \t]*(?:def|class|import|from|return|if|for|while|print|#include|public|"
                           r"function|const|let|var)\b|[;{}][ \t]*$", re.MULTILINE)
_DEF_LINE_RE = re.compile(r"^[ \t]*(?:def \w+\(|class \w+|import \w|from [\w.]+ import )", re.MULTILINE)
_DOCSTRING_RE = re.compile(r"(\"\"\"|\'\'\')[\s\S]*?\1")
ANNOTATION_RE = re.compile(r"<<([^<>=]*)=([^<>]*)>>")
_OP = r"[-+*/×÷]|(?<=\s)[xX](?=\s)"
# operands start with a digit, "(" or "$" (not white space) so the scan fails fast elsewhere
_OPERAND = rf"\(?\$?(?:{NUM})\)?"
PLAIN_STEP_RE = re.compile(
    rf"(?<![\w.,])((?:{_OPERAND}[ \t]*(?:{_OP})[ \t]*)+{_OPERAND})[ \t]*=[ \t]*\$?({NUM})(?![\w]|[.,]\d)")
_EQUALS_NUMBER_RE = re.compile(r"=[ \t]*\$?\d")
# Visible expression written in front of a GSM8K calculator annotation: ``48/2 = <<48/2=24>>24``.
VISIBLE_EXPR_RE = re.compile(rf"((?:{_OPERAND}[ \t]*(?:{_OP})[ \t]*)+{_OPERAND})[ \t]*=[ \t]*\$?[ \t]*$")
_EXPR_CHARS = frozenset("0123456789.,$ \t+-*/x×÷()=X")
SENTENCE_RE = re.compile(r"\S(?:[^.!?。！？\n]++|[.!?](?!\s|$))*+(?:[.!?。！？]+[\"')\]]*|$)")
ABBREVIATION_RE = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Dr|Prof|St|Sr|Jr|vs|etc|No|Fig|approx|e\.g|i\.e|U\.S)"
                             r"|\b[A-Z])\.$")
LIST_MARKER_RE = re.compile(r"^[ \t]*(?:#{1,6}[ \t]+|[-*+•][ \t]+|\(?\d{1,3}[.)][ \t]+|"
                            r"\(?[a-zA-Z][.)][ \t]+|[A-Za-z]+ \d{1,3}:[ \t]*|\*\*[^*\n]{1,60}:\*\*[ \t]*)?")
TERMINAL_CHARS = ".!?。！？"


def format_like(value: float, like: str) -> str:
    """Write ``value`` the way ``like`` was written (commas, decimals)."""
    decimals = len(like.split(".")[1]) if "." in like else 0
    if abs(value - round(value)) < 1e-9:
        text = f"{round(value):,}" if "," in like else str(round(value))
        if decimals:
            text += "." + "0" * decimals
        return text
    places = decimals or 2
    text = f"{value:,.{places}f}" if "," in like else f"{value:.{places}f}"
    return text.rstrip("0").rstrip(".") if decimals == 0 else text


_ARITH_TOKEN = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+|[-+*/()])")


def safe_eval(expr: str) -> float | None:
    """Evaluate plain arithmetic (numbers, + - * / and brackets); None if it is anything else.
    A small parser rather than ``eval``: no code runs, and it is several times faster."""
    expr = expr.replace(",", "").replace("$", "").replace("×", "*").replace("÷", "/")
    if "x" in expr or "X" in expr:
        expr = re.sub(r"\s[xX]\s", "*", expr)
    toks: list[str] = []
    pos = 0
    expr = expr.rstrip()
    while pos < len(expr):
        m = _ARITH_TOKEN.match(expr, pos)
        if not m:
            return None
        toks.append(m.group(1))
        pos = m.end()
    if not toks:
        return None
    try:
        value, i = _parse_sum(toks, 0)
    except (IndexError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return value if i == len(toks) else None


def _parse_sum(toks: list[str], i: int) -> tuple[float, int]:
    value, i = _parse_product(toks, i)
    while i < len(toks) and toks[i] in "+-":
        op = toks[i]
        rhs, i = _parse_product(toks, i + 1)
        value = value + rhs if op == "+" else value - rhs
    return value, i


def _parse_product(toks: list[str], i: int) -> tuple[float, int]:
    value, i = _parse_atom(toks, i)
    while i < len(toks) and toks[i] in "*/":
        op = toks[i]
        rhs, i = _parse_atom(toks, i + 1)
        value = value * rhs if op == "*" else value / rhs
    return value, i


def _parse_atom(toks: list[str], i: int) -> tuple[float, int]:
    tok = toks[i]
    if tok == "(":
        value, i = _parse_sum(toks, i + 1)
        if toks[i] != ")":
            raise ValueError("unbalanced")
        return value, i + 1
    if tok == "-":
        value, i = _parse_atom(toks, i + 1)
        return -value, i
    if tok in "+*/)":
        raise ValueError(tok)
    return float(tok), i + 1


def lower_first(sentence: str, context: str = "") -> str:
    """Lower-case the first word of a sentence quoted inside another, unless it looks like a
    name: all capitals ("NASA", "I"), capitals inside, or written capitalized mid-sentence in
    ``context``."""
    word = sentence.split(" ", 1)[0].rstrip(",:;")
    if not word or not word[0].isupper():
        return sentence
    if word.lower() not in COMMON_STARTERS:
        if len(word) == 1 or not word[1:].islower() or not word.isalpha():
            return sentence
        if context and re.search(rf"[a-z,;] {re.escape(word)}\b", context):
            return sentence
    return sentence[0].lower() + sentence[1:]


def strip_annotations(text: str) -> str:
    return ANNOTATION_RE.sub("", text)


@dataclass(frozen=True)
class Edit:
    """Replace ``positive[start:end]`` by ``replacement``."""

    start: int
    end: int
    replacement: str
    perturbation: str
    info: dict[str, Any] | None = None


@dataclass
class Span:
    start: int
    end: int
    body: int
    """Where the content starts after a list marker or heading mark (== start when none)."""


@dataclass
class Step:
    """One arithmetic step ``a op b = c`` (plain or a GSM8K ``<<a op b=c>>c`` annotation)."""

    start: int
    end: int
    expr: str
    """Evaluable expression (numbers as written)."""
    expr_start: int
    """Offset of ``expr`` in the text, to find its operands again."""
    visible: tuple[int, int] | None
    """The human-written expression in front of an annotation, if any."""
    results: list[tuple[int, int]]
    result_text: str
    verified: bool
    """The stated result equals the expression's value (safe to recompute after a change)."""
    operands: list[tuple[int, int]] = field(default_factory=list)


def apply_edits(text: str, edits: list[Edit]) -> str:
    parts: list[str] = []
    pos = 0
    for e in sorted(edits, key=lambda e: e.start):
        parts.append(text[pos:e.start])
        parts.append(e.replacement)
        pos = e.end
    parts.append(text[pos:])
    return "".join(parts)


def overlaps(edit: Edit, edits: list[Edit]) -> bool:
    for e in edits:
        if edit.start == edit.end == e.start == e.end:
            return True  # two insertions at one point would be ambiguous
        if edit.start < e.end and e.start < edit.end:
            return True
        if edit.start == edit.end and e.start < edit.start < e.end:
            return True
        if e.start == e.end and edit.start < e.start < edit.end:
            return True
    return False


class Doc:
    """Lazily computed views of one response."""

    def __init__(self, text: str, question: str | None = None) -> None:
        self.text = text
        self.question = question or ""
        self._estimates: dict[tuple[int, int, str], tuple[int, int, int, int]] = {}
        self.sites: dict[tuple[str, int], Any] = {}
        """Regex matches found once per text by the perturbations (``_perturb._prose_sites``)."""

    # -- tokens and the verifier estimate -------------------------------------------------
    @cached_property
    def num_tokens(self) -> int:
        return len(tokens(self.text))

    def estimate(self, edits: list[Edit]) -> tuple[float, int]:
        """The verifier's (difference, changed_tokens) for these edits, computed on the edited
        spans only: edits are local, so the rest of the text matches itself."""
        n = self.num_tokens
        removed = added = matched = changed = 0
        for e in edits:
            key = (e.start, e.end, e.replacement)
            cached = self._estimates.get(key)
            if cached is None:
                cached = self._estimates[key] = self._edit_estimate(e)
            removed += cached[0]
            added += cached[1]
            matched += cached[2]
            changed += cached[3]
        total = n + (n - removed + added)
        if total == 0:
            return 0.0, 0
        same = n - removed + matched
        return 1.0 - 2.0 * same / total, changed

    def _edit_estimate(self, e: Edit) -> tuple[int, int, int, int]:
        """(removed, added, matched, changed) tokens of one edit."""
        a = tokens(self.text[e.start:e.end])
        b = tokens(e.replacement)
        if len(a) == 1 and len(b) == 1:  # the common case (a number), without difflib
            same = a[0] == b[0]
            return 1, 1, int(same), int(not same and (a[0] not in STOPWORDS or b[0] not in STOPWORDS))
        if not a or not b:
            changed = sum(1 for t in a if t not in STOPWORDS) + sum(1 for t in b if t not in STOPWORDS)
            return len(a), len(b), 0, changed
        matched = changed = 0
        sm = SequenceMatcher(None, a, b, autojunk=False)
        for op, i1, i2, j1, j2 in sm.get_opcodes():
            if op == "equal":
                matched += i2 - i1
            else:
                changed += max(sum(1 for t in a[i1:i2] if t not in STOPWORDS),
                               sum(1 for t in b[j1:j2] if t not in STOPWORDS))
        return len(a), len(b), matched, changed

    # -- code -------------------------------------------------------------------------------
    @cached_property
    def code_regions(self) -> list[tuple[int, int, str]]:
        """(start, end, language) of code: fenced blocks' contents, or the whole text when it
        reads as code without fences."""
        text = self.text
        if "```" in text or "~~~" in text:
            regions = []
            fences = list(FENCE_RE.finditer(text))
            for i in range(0, len(fences) - 1, 2):
                open_, close = fences[i], fences[i + 1]
                start = open_.end() + 1
                if start <= close.start():
                    regions.append((start, close.start(), open_.group(2).strip().lower()))
            return regions
        if not _CODE_HINT_RE.search(text):
            return []
        # docstrings are part of the code but read as prose: count the lines without them
        bare = _DOCSTRING_RE.sub("", text) if '"""' in text or "\'\'\'" in text else text
        lines = [ln for ln in bare.split("\n") if ln.strip()]
        code_lines = sum(1 for ln in lines if CODE_LINE_RE.match(ln))
        share = 0.5 if _DEF_LINE_RE.search(text) else 0.6
        if len(lines) >= 2 and code_lines >= share * len(lines):
            return [(0, len(text), "")]
        return []

    @cached_property
    def code_strings(self) -> list[tuple[int, int]]:
        """Triple-quoted strings (docstrings) inside code: text, not code, so left alone."""
        if '"""' not in self.text and "\'\'\'" not in self.text:
            return []
        return [(m.start(), m.end()) for m in _DOCSTRING_RE.finditer(self.text) if self.in_code(m.start())]

    def in_code_string(self, start: int, end: int) -> bool:
        return any(s < end and start < e for s, e in self.code_strings)

    @cached_property
    def fence_lines(self) -> list[tuple[int, int]]:
        return [(m.start(), m.end()) for m in FENCE_RE.finditer(self.text)] if "```" in self.text \
            or "~~~" in self.text else []

    def in_code(self, pos: int) -> tuple[int, int, str] | None:
        for region in self.code_regions:
            if region[0] <= pos < region[1]:
                return region
        return None

    def in_prose(self, start: int, end: int) -> bool:
        for s, e, _ in self.code_regions:
            if start < e and s < end:
                return False
        for s, e in self.fence_lines:
            if start < e and s < end:
                return False
        return True

    # -- lines and sentences ------------------------------------------------------------------
    @cached_property
    def lines(self) -> list[Span]:
        """Non-empty prose lines, with their list marker skipped in ``body``."""
        out = []
        pos = 0
        text = self.text
        for raw in text.split("\n"):
            start, end = pos, pos + len(raw)
            pos = end + 1
            if not raw.strip() or not self.in_prose(start, end):
                continue
            marker = LIST_MARKER_RE.match(raw)
            body = start + (marker.end() if marker else 0)
            while body < end and text[body] in " \t":
                body += 1
            end = start + len(raw.rstrip())
            if body < end:
                out.append(Span(start, end, body))
        return out

    @cached_property
    def sentences(self) -> list[Span]:
        """Prose sentences (a list item or heading line counts as one too)."""
        out: list[Span] = []
        text = self.text
        for line in self.lines:
            pending: Span | None = None
            for m in SENTENCE_RE.finditer(text, line.body, line.end):
                span = Span(m.start(), m.end(), m.start())
                if pending is not None:
                    span = Span(pending.start, span.end, pending.body)
                if ABBREVIATION_RE.search(text, span.start, span.end) and span.end < line.end:
                    pending = span
                    continue
                pending = None
                out.append(span)
            if pending is not None:
                out.append(pending)
        return out

    @cached_property
    def tail_start(self) -> int:
        """Where the closing answer line starts (``#### 72``); insertions go before it."""
        fa = self.final_answer
        if fa is None:
            return len(self.text)
        line_start = self.text.rfind("\n", 0, fa[0]) + 1
        if self.text.startswith("####", line_start):
            return line_start
        return len(self.text)

    def claim_sentences(self, max_words: int = 60) -> list[Span]:
        """Declarative sentences of 3..max_words words before the closing answer line."""
        out = []
        for s in self.sentences:
            if s.end > self.tail_start:
                continue
            chunk = self.text[s.body:s.end]
            if chunk.endswith("?") or chunk.endswith(":"):
                continue
            words = chunk.count(" ") + 1
            if 3 <= words <= max_words:
                out.append(s)
        return out

    @cached_property
    def insert_points(self) -> list[int]:
        """Offsets right after a sentence that ends with terminal punctuation (before the tail)."""
        text = self.text
        pts = [s.end for s in self.sentences
               if s.end <= self.tail_start and text[s.end - 1] in TERMINAL_CHARS + "\"')]"
               and not text[s.body:s.end].endswith("?")]
        return pts

    # -- numbers, steps, final answer ---------------------------------------------------------
    @cached_property
    def masked(self) -> str:
        """The text with GSM8K annotations blanked out, so plain patterns skip them."""
        if "<<" not in self.text:
            return self.text
        return ANNOTATION_RE.sub(lambda m: "\x00" * len(m.group()), self.text)

    @cached_property
    def steps(self) -> list[Step]:
        text = self.text
        steps: list[Step] = []
        if "<<" in text:
            for m in ANNOTATION_RE.finditer(text):
                expr, result = m.group(1), m.group(2).strip()
                if not NUM_RE.fullmatch(result):
                    continue
                results = [(m.start(2) + m.group(2).find(result), m.start(2) + m.group(2).find(result)
                            + len(result))]
                after = re.match(rf"\$?({NUM})", text[m.end():m.end() + 24])
                end = m.end()
                if after and number_key(after.group(1)) == number_key(result):
                    results.append((m.end() + after.start(1), m.end() + after.end(1)))
                    end = m.end() + after.end(1)
                # scan left over expression characters first: searching a wide window with an
                # end-anchored pattern is slow
                i = m.start()
                while i > 0 and text[i - 1] in _EXPR_CHARS and m.start() - i < 160:
                    i -= 1
                vis = VISIBLE_EXPR_RE.search(text, i, m.start()) if i < m.start() else None
                visible = (vis.start(1), vis.end(1)) if vis else None
                value = safe_eval(expr)
                verified = value is not None and abs(value - float(number_key(result))) <= 0.011
                step = Step(visible[0] if visible else m.start(), end, expr, m.start(1), visible,
                            results, result, verified)
                step.operands = [(m.start(1) + o.start(), m.start(1) + o.end())
                                 for o in NUM_RE.finditer(expr)]
                if visible:
                    step.operands += [(o.start(), o.end()) for o in NUM_RE.finditer(text, *visible)]
                steps.append(step)
        masked = self.masked
        for m in PLAIN_STEP_RE.finditer(masked) if _EQUALS_NUMBER_RE.search(masked) else ():
            if not self.in_prose(m.start(), m.end()):
                continue  # ``x = 2 * 3`` in code is code, not a worked step
            value = safe_eval(m.group(1))
            result = m.group(2)
            verified = value is not None and abs(value - float(number_key(result))) <= \
                max(0.011, 1e-9 * abs(value))
            step = Step(m.start(1), m.end(2), m.group(1), m.start(1), None, [(m.start(2), m.end(2))],
                        result, verified)
            step.operands = [(o.start(), o.end()) for o in NUM_RE.finditer(text, m.start(1), m.end(1))]
            steps.append(step)
        steps.sort(key=lambda s: s.start)
        return steps

    @cached_property
    def final_answer(self) -> tuple[int, int] | None:
        """Span of the stated numeric final answer (the last one found)."""
        best: tuple[int, int] | None = None
        for rx in FINAL_ANSWER_RES:
            for m in rx.finditer(self.text):
                if best is None or m.start(1) > best[0]:
                    best = (m.start(1), m.end(1))
            if best is not None and rx is FINAL_ANSWER_RES[0]:
                break  # GSM8K's ``#### N`` is authoritative
        return best

    @cached_property
    def prose_numbers(self) -> list[tuple[int, int]]:
        """Numbers outside code and outside GSM8K annotations."""
        masked = self.masked
        return [(m.start(1), m.end(1)) for m in PROSE_NUM_RE.finditer(masked)
                if self.in_prose(m.start(1), m.end(1))]

    @cached_property
    def topic(self) -> str:
        """A salient content word (from the question when given) for invented claims."""
        counts: dict[str, int] = {}
        source = self.question or self.text[:1500]
        # lower-case words only (names are capitalized), and not adjectives or adverbs by form
        for w in re.findall(r"(?<![\w-])[a-z]{5,}(?![\w-])", strip_annotations(source)):
            if w in _VAGUE or w.endswith(_NOT_NOUN):
                continue
            counts[w] = counts.get(w, 0) + 1
        if not counts:
            return "this topic"
        return max(counts.items(), key=lambda kv: (kv[1], len(kv[0])))[0]


_NOT_NOUN = ("ly", "ed", "ous", "ive", "ful", "able", "ible", "ical", "less", "est")
_VAGUE = frozenset("about which there their these those would could should where while other after "
                   "before being every first people thing things because since still really might "
                   "provide provided following given write answer question sentence please given "
                   "based output input using explain example examples information task "
                   "however therefore following different total amount number times another "
                   "remaining twice several others within without among against solve write create "
                   "describe determine calculate identify choose select complete generate translate "
                   "classify options option correct incorrect single whether rather quite".split())
