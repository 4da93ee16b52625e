"""Crisis words in the free text: does a message speak of suicide or self-harm?

The expressions, their sources and the reasoning behind each choice live in
`crisis_lexicon.yaml` beside this module (reviewed data, not code); this module reads it once,
checks it, and matches messages against it. `mentions_crisis` is all the service needs; which
entry matched (`matched_entry`) exists for tests and reviews, never for logs: a message that
speaks of suicide is health data (GDPR art. 9) and must not leave intake through a log line.

Matching works on words, not characters, so that the way a person types does not decide
whether they see the 3114: the message and every expression are reduced the same way (lower
case, no accents, any apostrophe, hyphen or run of spaces made one space), the message is cut
into clauses at punctuation, and an expression matches whole words inside one clause. Negation
is not read ("pas d'idées noires" matches): a false positive shows a helpline, which is
acceptable; misreading a negation would hide one.
"""

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib.resources import files
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rebond_contracts.contacts import Source
from rebond_contracts.datafile import load_yaml_model

#: Where a clause ends; other punctuation (apostrophes, hyphens, quotes) only separates words.
_CLAUSE_END = re.compile(r"[.!?;:,…\n\r]+")
_NOT_A_LETTER = re.compile(r"[^a-z0-9]+")
#: Pattern syntax kept by `_normalise(..., syntax=True)`: groups, alternatives, stems.
_SYNTAX = "()|*"
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae"})
_WORD_START = r"(?<![a-z0-9])"
_WORD_END = r"(?![a-z0-9])"
_MIN_STEM = 4


class LexiconError(ValueError):
    """The lexicon cannot be used; the message names the entry and what is wrong."""


def _normalise(text: str, *, syntax: bool = False) -> str:
    """Lower-case unaccented words separated by single spaces (keeping `()|*` for patterns)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LIGATURES))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    if syntax:
        plain = re.sub(rf"[^a-z0-9{re.escape(_SYNTAX)}]+", " ", plain)
        plain = re.sub(r" *([()|]) *", r"\1", plain)  # "( a | b ) c" -> "(a|b)c" ...
        plain = re.sub(r"\)(?=[a-z0-9(])", ") ", plain)  # ... -> "(a|b) c"
        plain = re.sub(r"([a-z0-9*])\(", r"\1 (", plain)
        return plain.strip()
    return _NOT_A_LETTER.sub(" ", plain).strip()


def clauses(text: str) -> list[str]:
    """The message as normalised clauses, the unit inside which expressions are matched."""
    return [words for part in _CLAUSE_END.split(text) if (words := _normalise(part))]


def _regex(form: str, where: str) -> str:
    """Translate one form (`(mets|mettre) fin à (ma vie|mes jours)`, `suicid*`) to a regex."""
    pattern = _normalise(form, syntax=True)
    if not pattern or "()" in pattern or "(|" in pattern or "|)" in pattern or "||" in pattern:
        raise LexiconError(f"{where}: {form!r} has an empty expression or alternative")
    if re.search(r"\*[a-z0-9]", pattern) or re.search(r"(^|[^a-z0-9])\*", pattern):
        raise LexiconError(f"{where}: {form!r}: '*' must end a word")
    out: list[str] = []
    for token in re.findall(r"[a-z0-9]+\*?|[()| ]", pattern):
        if token.endswith("*"):
            if len(token) - 1 < _MIN_STEM:
                raise LexiconError(
                    f"{where}: {form!r}: stem {token!r} is shorter than {_MIN_STEM} letters"
                )
            out.append(re.escape(token[:-1]) + "[a-z0-9]*")
        else:
            out.append({"(": "(?:", ")": ")", "|": "|", " ": " "}.get(token, re.escape(token)))
    regex = "".join(out)
    try:
        re.compile(regex)
    except re.error as error:
        raise LexiconError(f"{where}: {form!r} is not a valid expression: {error}") from error
    return regex


def _any_of(forms: list[str], where: str) -> str:
    return "(?:" + "|".join(_regex(form, where) for form in forms) + ")"


class LexiconSource(Source):
    """A public page an expression was taken from, and when someone last read it."""

    id: str = Field(min_length=1)
    checked: date


class Entry(BaseModel):
    """One expression (with its listed inflections) and where it comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    lang: list[Literal["fr", "en"]] = Field(min_length=1)
    forms: list[str] = Field(min_length=1)
    unless_followed_by: list[str] = []
    unless_preceded_by: list[str] = []
    sources: list[str] = Field(min_length=1)


class Lexicon(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    sources: list[LexiconSource] = Field(min_length=1)
    entries: list[Entry] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> "Lexicon":
        known = [source.id for source in self.sources]
        ids = [entry.id for entry in self.entries]
        for name, values in (("source", known), ("entry", ids)):
            if twice := sorted({v for v in values if values.count(v) > 1}):
                raise ValueError(f"{name} ids listed twice: {', '.join(twice)}")
        for entry in self.entries:
            if unknown := [s for s in entry.sources if s not in known]:
                raise ValueError(f"entry {entry.id!r} cites unknown sources: {', '.join(unknown)}")
        return self


@dataclass(frozen=True)
class _Compiled:
    """One entry ready to match: the expression and the contexts that cancel it."""

    id: str
    expression: re.Pattern[str]
    followed_by: re.Pattern[str] | None
    preceded_by: re.Pattern[str] | None

    def matches(self, clause: str) -> bool:
        for found in self.expression.finditer(clause):
            after, before = clause[found.end() :], clause[: found.start()]
            if self.followed_by and self.followed_by.match(after):
                continue
            if self.preceded_by and self.preceded_by.search(before):
                continue
            return True
        return False


class CrisisLexicon:
    """A checked lexicon, compiled once; `match` answers which entry a message hits."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.version = lexicon.version
        self._entries = tuple(self._compile(entry) for entry in lexicon.entries)

    @staticmethod
    def _compile(entry: Entry) -> _Compiled:
        where = f"entry {entry.id!r}"
        followed = preceded = None
        if entry.unless_followed_by:
            followed = re.compile(f" {_any_of(entry.unless_followed_by, where)}{_WORD_END}")
        if entry.unless_preceded_by:
            preceded = re.compile(f"{_WORD_START}{_any_of(entry.unless_preceded_by, where)} $")
        return _Compiled(
            id=entry.id,
            expression=re.compile(_WORD_START + _any_of(entry.forms, where) + _WORD_END),
            followed_by=followed,
            preceded_by=preceded,
        )

    def match(self, text: str) -> str | None:
        """The id of the first entry the message contains, or None."""
        for clause in clauses(text):
            for entry in self._entries:
                if entry.matches(clause):
                    return entry.id
        return None


def parse_lexicon(text: str, origin: str = "crisis lexicon") -> CrisisLexicon:
    """Check and compile a lexicon document; `LexiconError` says what is wrong, and where."""
    checked = load_yaml_model(text, Lexicon, origin, LexiconError)
    try:
        return CrisisLexicon(checked)
    except LexiconError as error:
        raise LexiconError(f"{origin}: {error}") from error


@cache
def lexicon() -> CrisisLexicon:
    """The packaged lexicon, read, checked and compiled on first use, then kept."""
    data = files("rebond_intake").joinpath("crisis_lexicon.yaml").read_text(encoding="utf-8")
    return parse_lexicon(data, "crisis_lexicon.yaml")


def matched_entry(text: str) -> str | None:
    """Which lexicon entry the message hits. For tests and reviews only: never log it."""
    return lexicon().match(text)


def mentions_crisis(text: str) -> bool:
    """Whether the free text speaks of suicide or self-harm (see crisis_lexicon.yaml)."""
    return matched_entry(text) is not None
