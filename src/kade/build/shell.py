"""Docker's shell lexer: variable substitution and word splitting in Dockerfiles.

It follows BuildKit's frontend/dockerfile/shell (lex.go) rule for rule, so a word
expands in Kade exactly as it does in `docker build`:

    >>> process_word('${HOME:-/root}/"a b"', {})
    '/root/a b'
    >>> process_words('a "b c" $X', {"X": "d e"})
    ['a', 'b c', 'd', 'e']

- `$NAME`, `${NAME}`; an unset name expands to "". `$` not followed by a name is kept.
- `${NAME-w}` `${NAME:-w}` default, `${NAME+w}` `${NAME:+w}` alternative,
  `${NAME?w}` `${NAME:?w}` error; with `:` an empty value counts as unset.
- `${NAME#p}` `${NAME##p}` `${NAME%p}` `${NAME%%p}` trim a shell pattern (`*`, `?`),
  `${NAME/p/r}` `${NAME//p/r}` replace it.
- Single quotes keep everything; double quotes expand `$` and honour the escape
  token only before `"`, `$` and itself; quotes are removed (unless `raw_quotes`).
- The escape token (`\\` or `` ` `` from the `# escape=` directive) escapes the next
  character outside quotes and is removed.
- `process_words` splits on unquoted whitespace, including whitespace that comes
  out of an unquoted expansion (but never inside quotes).
- `<<` is passed through with the blanks after it, so heredoc markers survive.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from kade.util.record import field, record as dataclass

from kade.errors import InvalidArgument

__all__ = ["Lexer", "ShellError", "WordResult", "process_word", "process_words",
           "referenced_names"]

_SPECIAL_PARAMS = "@*#?-$!0"
_BLANKS = "\t\r "
_UNMATCHED = "unexpected end of statement while looking for matching "


class ShellError(InvalidArgument):
    """A word that docker's lexer refuses (bad substitution, unmatched quote, `:?`)."""


@dataclass
class WordResult:
    """What one pass over a word produced, and which names it looked up."""
    result: str
    words: list[str]
    matched: set[str] = field(default_factory=set)
    unmatched: set[str] = field(default_factory=set)


def _is_space(ch: str) -> bool:
    """Go's unicode.IsSpace (Python's isspace also counts \\x1c-\\x1f)."""
    return ch.isspace() and not "\x1c" <= ch <= "\x1f"


def _is_name_char(ch: str) -> bool:
    return ch.isalpha() or ch.isdecimal() or ch == "_"


class _Words:
    """Accumulates whitespace-split words; quoted and escaped text never splits, and
    an empty quoted string alone makes no word (as in BuildKit)."""

    def __init__(self) -> None:
        self.buf = ""
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if _is_space(ch):
            if self.in_word and self.buf:
                self.words.append(self.buf)
                self.buf = ""
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        self.buf += text
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def finish(self) -> list[str]:
        if self.buf:
            self.words.append(self.buf)
            self.buf = ""
            self.in_word = False
        return self.words


class Lexer:
    """One lexer per escape token; `raw_quotes` keeps quote characters in the output,
    `skip_unset` leaves references to unset names as written (for multi-pass use)."""

    def __init__(self, escape: str = "\\", *, raw_quotes: bool = False,
                 raw_escapes: bool = False, skip_unset: bool = False,
                 skip_quotes: bool = False) -> None:
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_unset = skip_unset
        self.skip_quotes = skip_quotes

    def process(self, word: str, env: Mapping[str, str]) -> WordResult:
        scan = _Scan(self, word, env)
        try:
            result, words = scan.stop_on(None, self.raw_escapes)
        except ShellError as e:
            raise ShellError(f"failed to process {_go_quote(word)}: {e}") from None
        return WordResult(result, words, scan.matched, scan.unmatched)

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        return self.process(word, env).result

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        return self.process(word, env).words


class _Scan:
    """The state of one pass over one word (BuildKit's shellWord)."""

    def __init__(self, lex: Lexer, text: str, env: Mapping[str, str]) -> None:
        self.lex = lex
        self.text = text
        self.pos = 0
        self.env = env
        self.raw_escapes = lex.raw_escapes
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1 if ch else 0
        return ch

    def stop_on(self, stop: str | None, raw_escapes: bool) -> tuple[str, list[str]]:
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._stop_on(stop)
        finally:
            self.raw_escapes = saved

    def _stop_on(self, stop: str | None) -> tuple[str, list[str]]:
        out: list[str] = []
        words = _Words()
        quotes = "" if self.lex.skip_quotes else "'\""
        while self.peek():
            ch = self.peek()
            if stop is not None and ch == stop:
                self.next()
                return "".join(out), words.finish()
            if ch == "$":
                value = self.dollar()
                out.append(value)
                words.add_string(value)
                continue
            if ch == "<" or ch in quotes:
                value = {"<": self.maybe_heredoc, "'": self.single_quote,
                         '"': self.double_quote}[ch]()
                out.append(value)
                words.add_raw(value)
                continue
            ch = self.next()
            if ch == self.lex.escape:
                if self.raw_escapes:
                    words.add_raw(ch)
                    out.append(ch)
                ch = self.next()
                if not ch:
                    break
                words.add_raw(ch)
            else:
                words.add_char(ch)
            out.append(ch)
        if stop is not None:
            raise ShellError(_UNMATCHED + stop)
        return "".join(out), words.finish()

    def single_quote(self) -> str:
        opening = self.next()
        out = [opening] if self.lex.raw_quotes else []
        while True:
            ch = self.next()
            if not ch:
                raise ShellError(_UNMATCHED + "single-quote")
            if ch == "'":
                if self.lex.raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        opening = self.next()
        out = [opening] if self.lex.raw_quotes else []
        while True:
            ch = self.peek()
            if not ch:
                raise ShellError(_UNMATCHED + "double-quote")
            if ch == '"':
                self.next()
                if self.lex.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.lex.escape:
                if self.raw_escapes:
                    out.append(ch)
                following = self.peek()
                if not following:
                    continue
                if following in ('"', "$", self.lex.escape):
                    ch = self.next()
            out.append(ch)

    def maybe_heredoc(self) -> str:
        self.next()
        if self.peek() != "<":
            return "<"
        self.next()
        start = self.pos
        while self.peek() and self.peek() in _BLANKS:
            self.next()
        return "<<" + self.text[start:self.pos]

    def name(self) -> str:
        start = self.pos
        ch = self.peek()
        if ch and ch.isdecimal():
            while self.peek() and self.peek().isdecimal():
                self.next()
            return self.text[start:self.pos]
        if ch and ch in _SPECIAL_PARAMS:
            return self.next()
        while self.peek() and _is_name_char(self.peek()):
            self.next()
        return self.text[start:self.pos]

    def lookup(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            self.matched.add(name)
            return self.env[name], True
        self.unmatched.add(name)
        return "", False

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            value, found = self.lookup(name)
            return "$" + name if not found and self.lex.skip_unset else value
        self.next()
        ch = self.peek()
        if not ch:
            raise ShellError("syntax error: missing '}'")
        if ch in "{}:":
            raise ShellError("syntax error: bad substitution")
        name = self.name()
        op = self.next()
        if op == "}":
            value, found = self.lookup(name)
            return "${%s}" % name if not found and self.lex.skip_unset else value
        if op == "/":
            return self.replace(name)
        null_is_unset = op == ":"
        modifier = op
        if null_is_unset:
            op = self.next()
            modifier += op
        if not op:
            modifier += "\ufffd"  # Go prints the EOF rune this way
        if not op or op not in "+-?#%":
            raise ShellError(f"unsupported modifier ({modifier}) in substitution")
        trims = op in "#%"
        if null_is_unset and trims:
            raise ShellError(f"unsupported modifier ({modifier}) in substitution")
        word = self._closed_word("}", trims, "syntax error: missing '}'")
        value, found = self.lookup(name)
        if self.lex.skip_unset and not found:
            return "${%s%s%s}" % (name, modifier, word)
        return _apply_modifier(name, op, word, value, found, null_is_unset)

    def _closed_word(self, stop: str, raw_escapes: bool, missing: str) -> str:
        try:
            word, _ = self.stop_on(stop, raw_escapes)
        except ShellError:
            if not self.peek():
                raise ShellError(missing) from None
            raise
        return word

    def replace(self, name: str) -> str:
        replace_all = self.peek() == "/"
        if replace_all:
            self.next()
        pattern = self._closed_word("/", True, "syntax error: missing '/' in ${}")
        replacement = self._closed_word("}", True, "syntax error: missing '}'")
        value, found = self.lookup(name)
        if self.lex.skip_unset and not found:
            return "${%s/%s/%s}" % (name, pattern, replacement)
        regex = _pattern_regex(pattern, greedy=True, anchored=False)
        return regex.sub(lambda _m: replacement, value, count=0 if replace_all else 1)


def _apply_modifier(name: str, op: str, word: str, value: str, found: bool,
                    null_is_unset: bool) -> str:
    unset = not found or (null_is_unset and value == "")
    if op == "-":
        return word if unset else value
    if op == "+":
        return "" if unset else word
    if op == "?":
        if not found:
            raise ShellError(f"{name}: {word or 'is not allowed to be unset'}")
        if null_is_unset and value == "":
            raise ShellError(f"{name}: {word or 'is not allowed to be empty'}")
        return value
    greedy = word[:1] == op
    if greedy:
        word = word[1:]
    if op == "%":
        return _trim_prefix(_reverse_pattern(word), value[::-1], greedy)[::-1]
    return _trim_prefix(word, value, greedy)


def _pattern_regex(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """A shell pattern (`*`, `?`, `\\` escapes) as a regular expression."""
    out = ["^"] if anchored else []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(".*" if greedy else ".*?")
        elif ch == "?":
            out.append(".")
        elif ch == "\\":
            following = pattern[i:i + 1]
            if following in ("}", "/"):
                continue
            if following not in ("*", "?", "\\"):
                raise ShellError(f"invalid pattern ({pattern}) in substitution: "
                                 f"invalid escape '\\{following}'")
            out.append(re.escape(following))
            i += 1
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out))


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    match = _pattern_regex(pattern, greedy=greedy, anchored=True).match(value)
    return value[match.end():] if match else value


def _reverse_pattern(pattern: str) -> str:
    """Reverse a pattern for suffix trimming, keeping `\\x` escapes in order."""
    tokens: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i != len(pattern) - 1:
            tokens.append(pattern[i:i + 2])
            i += 2
        else:
            tokens.append(pattern[i])
            i += 1
    return "".join(reversed(tokens))


def _go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def process_word(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """Expand `word` to one string, quotes and escapes removed (ENV values, WORKDIR...)."""
    return Lexer(escape).process_word(word, env)


def process_words(word: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Expand `word` and split it on unquoted whitespace."""
    return Lexer(escape).process_words(word, env)


def referenced_names(word: str, env: Mapping[str, str], escape: str = "\\") -> set[str]:
    """The names `word` looks up, set or not: what its cache key depends on."""
    result = Lexer(escape).process(word, env)
    return result.matched | result.unmatched
