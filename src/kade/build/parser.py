"""The Dockerfile parser: text to a flat list of instructions, as BuildKit parses it.

It follows BuildKit's frontend/dockerfile/parser rule for rule (the `dockerfile`
package on PyPI wraps that Go code; the tests compare the two when it is installed):

- Parser directives (`# syntax=`, `# escape=`, `# check=`) are comments at the very
  top; the first line that is not one (a blank line too) ends them. The escape token
  (`\\` or `` ` ``) drives line continuation and escapes.
- A line ending in the escape token (plus blanks) continues; comment lines and
  whitespace-only lines inside a continuation are dropped (the latter with a warning).
- The instruction name is case-insensitive; leading `--name=value` words are flags.
- RUN, CMD, ENTRYPOINT, SHELL take a JSON array (exec form) when the rest parses as
  one, else the raw text (shell form); an array of non-strings is an error. ADD, COPY,
  VOLUME fall back to whitespace-split words. ENV and LABEL give key/value/separator
  triples, ARG words, HEALTHCHECK its type then its command, ONBUILD a `sub` instruction.
- Heredocs (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`, several per line) are read for ADD,
  COPY and RUN in shell form, from the lines after the instruction.

    >>> df = parse("FROM busybox\\nRUN <<EOF\\necho hi\\nEOF\\n")
    >>> [(i.cmd, i.args, i.start_line, i.end_line) for i in df.instructions]
    [('FROM', ['busybox'], 1, 1), ('RUN', ['<<EOF'], 2, 4)]
    >>> df.instructions[1].heredocs[0].content
    'echo hi\\n'

Errors are `DockerfileError`s naming the file and the line: `Dockerfile:3: unknown
instruction: FOOO`. Like BuildKit, this layer does not check arguments (FROM's count,
ENV names...): that is the instruction layer's job.
"""

from __future__ import annotations

import json
import os
import re
from kade.util.record import field, record as dataclass

from kade.build.shell import Lexer, ShellError
from kade.errors import InvalidArgument

TYPE_CHECKING = False  # typing costs ~5 ms on every `kade build`
if TYPE_CHECKING:
    from typing import Any

__all__ = ["COMMANDS", "Dockerfile", "DockerfileError", "Heredoc", "Instruction",
           "parse", "parse_file"]

COMMANDS = ("ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM",
            "HEALTHCHECK", "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL",
            "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")
_HEREDOC_COMMANDS = ("ADD", "COPY", "RUN")
_DIRECTIVES = ("syntax", "escape", "check")
# Go's unicode.IsSpace, and the parser's narrower word separator.
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006" \
            "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_HEREDOC = re.compile(r"^([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)$")
_DIRECTIVE = re.compile(r"^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)"
                        r"[\t\n\f\r ]*\Z")
_MAX_LINE = 64 * 1024


class DockerfileError(InvalidArgument):
    """A Dockerfile that cannot be parsed; `line` is 1-based (0: no line)."""

    def __init__(self, filename: str, line: int, message: str) -> None:
        super().__init__(f"{filename}:{line}: {message}" if line else f"{filename}: {message}")
        self.filename = filename
        self.line = line
        self.message = message


class _Error(Exception):
    """An error raised before its location is known."""


@dataclass(frozen=True)
class Heredoc:
    """One here-document: `expand` is False when its delimiter was quoted; `chomp`
    (`<<-`) strips leading tabs from the body, as `text` does."""
    name: str
    content: str = ""
    fd: int = 0
    expand: bool = True
    chomp: bool = False

    @property
    def text(self) -> str:
        return re.sub(r"(?m)^\t+", "", self.content) if self.chomp else self.content


@dataclass
class Instruction:
    """One instruction. `cmd` is upper case; `args` are BuildKit's node values (the
    exec-form array when `json`, else the raw shell-form text or the words); `original`
    is the instruction's text with continuations joined; lines are 1-based."""
    cmd: str
    args: list[str]
    original: str
    flags: list[str] = field(default_factory=list)
    json: bool = False
    heredocs: list[Heredoc] = field(default_factory=list)
    start_line: int = 0
    end_line: int = 0
    sub: Instruction | None = None
    comments: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "cmd": self.cmd, "flags": self.flags, "args": self.args, "json": self.json,
            "original": self.original, "start_line": self.start_line,
            "end_line": self.end_line}
        if self.heredocs:
            data["heredocs"] = [vars(h).copy() for h in self.heredocs]
        if self.sub is not None:
            data["sub"] = self.sub.to_dict()
        return data


@dataclass
class Dockerfile:
    instructions: list[Instruction]
    escape: str = "\\"
    directives: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"escape": self.escape, "directives": self.directives,
                "warnings": self.warnings,
                "instructions": [i.to_dict() for i in self.instructions]}


def parse_file(path: str) -> Dockerfile:
    with open(path, "rb") as f:
        return parse(f.read(), os.path.basename(path))


def parse(source: str | bytes, filename: str = "Dockerfile") -> Dockerfile:
    """Parse a whole Dockerfile; raises DockerfileError."""
    if isinstance(source, bytes):
        source = source.decode("utf-8", errors="surrogateescape")
    return _Parser(source, filename).run()


class _Directives:
    """Parser directives at the top of the file, and the escape token they set."""

    def __init__(self) -> None:
        self.done = False
        self.found: dict[str, str] = {}
        self.escape = "\\"
        self.continuation = _continuation_regex("\\")

    def offer(self, line: str) -> bool:
        """Look at one line; True when it was a directive."""
        if self.done:
            return False
        match = _DIRECTIVE.match(line[1:].lstrip(_GO_SPACE)) if line.startswith("#") else None
        name = match.group(1).lower() if match else ""
        if name not in _DIRECTIVES:
            self.done = True
            return False
        if name in self.found:
            raise _Error(f"only one {name} parser directive can be used")
        value = match.group(2) if match else ""
        if name == "escape":
            if value not in ("\\", "`"):
                raise _Error(f"invalid escape token '{value}' does not match ` or \\")
            self.escape = value
            self.continuation = _continuation_regex(value)
        self.found[name] = value
        return True


def _continuation_regex(escape: str) -> re.Pattern[str]:
    e = re.escape(escape)
    return re.compile(rf"(?:([^{e}]){e}[ \t]*\Z)|(?:^{e}[ \t]*\Z)")


def _trim_newline(line: str) -> str:
    return line.rstrip("\r\n")


def _is_comment(line: str) -> bool:
    return line.lstrip(_GO_SPACE).startswith("#")


class _Parser:
    def __init__(self, source: str, filename: str) -> None:
        if source.startswith("\ufeff"):
            source = source[1:]
        self.lines = _split_lines(source)
        self.filename = filename
        self.pos = 0  # index of the next line to read == lines read so far
        self.directives = _Directives()
        self.comments: list[str] = []
        self.warnings: list[str] = []

    def fail(self, line: int, message: str) -> DockerfileError:
        return DockerfileError(self.filename, line, message)

    def next_line(self) -> str | None:
        if self.pos >= len(self.lines):
            return None
        line = self.lines[self.pos]
        if len(_trim_newline(line).encode("utf-8", "surrogateescape")) >= _MAX_LINE:
            raise self.fail(self.pos + 1, "dockerfile line greater than max allowed size "
                            f"of {_MAX_LINE - 1}")
        self.pos += 1
        return line

    def process(self, raw: str, strip_left: bool) -> str:
        token = _trim_newline(raw)
        if strip_left:
            token = token.lstrip(_GO_SPACE)
        try:
            if self.directives.offer(token) and self.comments:
                self.comments.pop()
        except _Error as e:
            raise self.fail(self.pos, str(e)) from None
        return "" if _is_comment(token) else token

    def trim_continuation(self, line: str) -> tuple[str, bool]:
        regex = self.directives.continuation
        if regex.search(line):
            return regex.sub(lambda m: m.group(1) or "", line), False
        return line, True

    def run(self) -> Dockerfile:
        instructions = []
        while (raw := self.next_line()) is not None:
            if _is_comment(raw):
                comment = raw[1:].strip(_GO_SPACE)  # sic: BuildKit cuts the first char
                self.comments = self.comments + [comment] if comment else []
            text = self.process(raw, True)
            start = self.pos
            text, ended = self.trim_continuation(text)
            if ended and not text:
                continue
            line = self.join_continuations(text, ended)
            instruction = self.instruction(line, start)
            instructions.append(instruction)
            self.comments = []
        if not instructions:
            raise self.fail(self.pos, "file with no instructions")
        return Dockerfile(instructions, self.directives.escape, dict(self.directives.found),
                          self.warnings)

    def join_continuations(self, text: str, ended: bool) -> str:
        parts = [text]
        empty_continuation = False
        while not ended and (raw := self.next_line()) is not None:
            text = self.process(raw, False)
            if _is_comment(raw):
                continue
            if not _trim_newline(text).lstrip(_GO_SPACE):
                empty_continuation = True
                continue
            text, ended = self.trim_continuation(text)
            parts.append(text)
        line = "".join(parts)
        if empty_continuation:
            self.warnings.append("Empty continuation line found in: " + line)
        return line

    def instruction(self, line: str, start: int) -> Instruction:
        try:
            node = _node_from_line(line, self.directives.escape, self.comments)
            _check_known(node)
            target = node.sub if node.cmd == "ONBUILD" and node.sub else node
            if target.cmd in _HEREDOC_COMMANDS and not target.json and "<<" in line:
                node.heredocs = self.read_heredocs(_heredocs_in(line), start)
        except _Error as e:
            raise self.fail(start, str(e)) from None
        node.start_line, node.end_line = start, self.pos
        if node.sub is not None:
            node.sub.start_line, node.sub.end_line = start, self.pos
        return node

    def read_heredocs(self, markers: list[Heredoc], start: int) -> list[Heredoc]:
        docs = []
        for marker in markers:
            body: list[str] = []
            while (raw := self.next_line()) is not None:
                candidate = _trim_newline(raw)
                if marker.chomp:
                    candidate = candidate.lstrip("\t")
                if candidate == marker.name:
                    break
                body.append(raw)
            else:
                raise self.fail(start, "unterminated heredoc")
            docs.append(Heredoc(marker.name, "".join(body), marker.fd, marker.expand,
                                marker.chomp))
        return docs


def _split_lines(source: str) -> list[str]:
    """Lines with their `\\n` kept, split on `\\n` only (Go's scanner, not str.splitlines)."""
    lines = source.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def _check_known(node: Instruction) -> None:
    _refuse_unknown(node)
    if node.cmd == "ONBUILD" and node.sub is not None:
        _refuse_unknown(node.sub)
        if node.sub.cmd == "ONBUILD":
            raise _Error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if node.sub.cmd in ("FROM", "MAINTAINER"):
            raise _Error(f"{node.sub.cmd} isn't allowed as an ONBUILD trigger")


def _refuse_unknown(node: Instruction) -> None:
    if node.cmd in COMMANDS:
        return
    written = _WHITESPACE.split(node.original.strip(_GO_SPACE), maxsplit=1)[0]
    message = f"unknown instruction: {written}"
    suggestion = _suggest(written)
    raise _Error(message + (f" (did you mean {suggestion}?)" if suggestion else ""))


def _suggest(name: str) -> str:
    """BuildKit's suggest.Search: the closest command within edit distance 2, in the
    case the user wrote."""
    best, best_distance = "", 3
    for option in COMMANDS:
        distance = _levenshtein(name.lower(), option.lower())
        if distance < best_distance:
            best, best_distance = option, distance
    if not best:
        return ""
    if name == name.lower():
        return best.lower()
    return best if name == name.upper() else best.lower()


def _levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _node_from_line(line: str, escape: str, comments: list[str]) -> Instruction:
    cmd, flags, rest = _split_command(line, escape)
    parse_args = _DISPATCH.get(cmd.upper(), _parse_ignore)
    args, is_json, sub = parse_args(rest, escape)
    return Instruction(cmd.upper(), args, line, flags, is_json, sub=sub,
                       comments=list(comments))


def _split_command(line: str, escape: str) -> tuple[str, list[str], str]:
    parts = _WHITESPACE.split(line.strip(_GO_SPACE), maxsplit=1)
    if len(parts) < 2:
        return parts[0], [], ""
    rest, flags = _extract_flags(parts[1], escape)
    return parts[0], flags, rest.strip(_GO_SPACE)


def _extract_flags(line: str, escape: str) -> tuple[str, list[str]]:
    """Leading `--flag` words (quotes and escapes removed); `--` alone ends them."""
    flags: list[str] = []
    pos, n = 0, len(line)
    while True:
        while pos < n and line[pos] in _GO_SPACE:
            pos += 1
        if pos == n:
            return "", flags
        if not line.startswith("--", pos) or pos + 1 == n:
            return line[pos:], flags
        word, blank_ok, pos = _flag_word(line, pos, escape)
        if word == "--":
            return line[pos:], flags
        if word or blank_ok:
            flags.append(word)


def _flag_word(line: str, pos: int, escape: str) -> tuple[str, bool, int]:
    """One flag word from `pos`: (word, had quotes, position of the blank after it)."""
    out: list[str] = []
    quote = ""
    blank_ok = False
    n = len(line)
    while pos < n:
        ch = line[pos]
        if not quote and ch in _GO_SPACE:
            break
        if not quote and ch in "'\"":
            quote, blank_ok = ch, True
        elif quote and ch == quote:
            quote = ""
        elif ch == escape:
            if pos + 1 < n:
                pos += 1
                out.append(line[pos])
            else:
                quote = ""
        else:
            out.append(ch)
        pos += 1
    return "".join(out), blank_ok, pos


Parsed = tuple[list[str], bool, "Instruction | None"]


def _parse_ignore(rest: str, escape: str) -> Parsed:
    return [""], False, None


def _parse_string(rest: str, escape: str) -> Parsed:
    return ([rest] if rest else []), False, None


def _parse_whitespace_delimited(rest: str, escape: str) -> Parsed:
    return (_WHITESPACE.split(rest) if rest else []), False, None


class _NotStrings(_Error):
    pass


def _parse_json(rest: str) -> list[str] | None:
    """The exec-form array, or None when `rest` is not JSON (then shell form)."""
    rest = rest.lstrip(_GO_SPACE)
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest, parse_constant=_reject_constant)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(item, str) for item in value):
        raise _NotStrings("when using JSON array syntax, arrays must be comprised of "
                          "strings only")
    return value


def _reject_constant(name: str) -> None:
    raise ValueError(name)  # Go's JSON has no NaN or Infinity


def _parse_maybe_json(rest: str, escape: str) -> Parsed:
    if not rest:
        return [], False, None
    array = _parse_json(rest)
    return ([rest], False, None) if array is None else (array, True, None)


def _parse_maybe_json_to_list(rest: str, escape: str) -> Parsed:
    array = _parse_json(rest)
    return _parse_whitespace_delimited(rest, escape) if array is None else (array, True, None)


def _parse_health(rest: str, escape: str) -> Parsed:
    sep = 0
    while sep < len(rest) and rest[sep] not in _GO_SPACE:
        sep += 1
    if sep == 0:
        return [], False, None
    after = sep
    while after < len(rest) and rest[after] in _GO_SPACE:
        after += 1
    args, is_json, _ = _parse_maybe_json(rest[after:], escape)
    return [rest[:sep], *args], is_json, None


def _parse_sub_command(rest: str, escape: str) -> Parsed:
    if not rest:
        return [], False, None
    return [], False, _node_from_line(rest, escape, [])


def _parse_words(rest: str, escape: str) -> list[str]:
    """Split on blanks outside quotes, keeping quotes and escapes (for ENV/LABEL/ARG)."""
    words: list[str] = []
    out: list[str] = []
    quote = ""
    blank_ok = in_word = False
    pos, n = 0, len(rest)
    while pos < n:
        ch = rest[pos]
        if not in_word:
            if ch in _GO_SPACE:
                pos += 1
                continue
            in_word = True
        if not quote:
            if ch in _GO_SPACE:
                if blank_ok or out:
                    words.append("".join(out))
                out, blank_ok, in_word = [], False, False
                pos += 1
                continue
            if ch in "'\"":
                quote, blank_ok = ch, True
            elif ch == escape:
                if pos + 1 == n:
                    break
                out.append(ch)
                pos += 1
                ch = rest[pos]
        else:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if pos + 1 == n:
                    break
                out.append(ch)
                pos += 1
                ch = rest[pos]
        out.append(ch)
        pos += 1
    if in_word and (blank_ok or out):
        words.append("".join(out))
    return words


def _parse_name_val(key: str) -> Any:
    def parse_name_val(rest: str, escape: str) -> Parsed:
        words = _parse_words(rest, escape)
        if not words:
            return [], False, None
        if "=" not in words[0]:
            parts = _WHITESPACE.split(rest, maxsplit=1)
            if len(parts) < 2:
                raise _Error(f"{key} must have two arguments")
            return [parts[0], parts[1], ""], False, None
        args: list[str] = []
        for word in words:
            if "=" not in word:
                raise _Error(f"Syntax error - can't find = in {json.dumps(word)}. "
                             "Must be of the form: name=value")
            name, value = word.split("=", 1)
            args += [name, value, "="]
        return args, False, None
    return parse_name_val


def _parse_name_or_name_val(rest: str, escape: str) -> Parsed:
    return _parse_words(rest, escape), False, None


_DISPATCH = {
    "ADD": _parse_maybe_json_to_list, "ARG": _parse_name_or_name_val,
    "CMD": _parse_maybe_json, "COPY": _parse_maybe_json_to_list,
    "ENTRYPOINT": _parse_maybe_json, "ENV": _parse_name_val("ENV"),
    "EXPOSE": _parse_whitespace_delimited, "FROM": _parse_whitespace_delimited,
    "HEALTHCHECK": _parse_health, "LABEL": _parse_name_val("LABEL"),
    "MAINTAINER": _parse_string, "ONBUILD": _parse_sub_command,
    "RUN": _parse_maybe_json, "SHELL": _parse_maybe_json,
    "STOPSIGNAL": _parse_string, "USER": _parse_string,
    "VOLUME": _parse_maybe_json_to_list, "WORKDIR": _parse_string,
}


def _heredocs_in(line: str) -> list[Heredoc]:
    """The heredoc markers among the words of an instruction line."""
    lexer = Lexer("\\", raw_quotes=True, raw_escapes=True, skip_unset=True)
    try:
        words = lexer.process_words(line, {})
    except ShellError:
        words = []
    markers = []
    for word in words:
        marker = _heredoc_marker(word)
        if marker is not None:
            markers.append(marker)
    return markers


def _heredoc_marker(word: str) -> Heredoc | None:
    match = _HEREDOC.match(word)
    if not match or not match.group(3):
        return None
    fd, chomp, rest = int(match.group(1) or 0), match.group(2) == "-", match.group(3)
    try:
        words = Lexer("\\", skip_unset=True).process_words(rest, {})
        raw = Lexer("\\", skip_unset=True, raw_quotes=True).process_words(rest, {})
    except ShellError as e:
        raise _Error(str(e)) from None
    if len(words) != 1:
        return None

    def quotes(text: str) -> int:
        return text.count("'") + text.count('"')
    return Heredoc(words[0], fd=fd, chomp=chomp, expand=quotes(words[0]) == quotes(raw[0]))
