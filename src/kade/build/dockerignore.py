"""`.dockerignore`: which context paths `docker build` leaves out.

Docker's rules (moby/patternmatcher and its ignorefile reader), kept exactly:

- A line starting with `#` is a comment; lines are trimmed; blank lines are skipped;
  a UTF-8 BOM on the first line is dropped.
- `!` makes an exception (re-includes); later lines win over earlier ones.
- Patterns are cleaned like Go's filepath.Clean and a leading `/` is dropped, so
  `/a/../b/` is `b`. Paths are always relative to the context root.
- `*` and `?` never cross `/`; `**` crosses any number of directories (also none);
  `[...]` classes and `\\` escapes work as in filepath.Match.
- A path is ignored when a pattern matches it *or any of its parents*:

      >>> m = Matcher(read("*.log\\n!keep.log\\nbuild/\\n"))
      >>> m.matches("a.log"), m.matches("keep.log"), m.matches("build/x/y.o")
      (True, False, True)

- A per-Dockerfile file `NAME.dockerignore` next to `NAME` wins over the context's
  `.dockerignore` (see `ignore_file_for`).
"""

from __future__ import annotations

import os
import posixpath
import re
from kade.util.record import field, record as dataclass

from kade.errors import InvalidArgument

__all__ = ["Matcher", "Pattern", "clean", "ignore_file_for", "read"]

_ESCAPED = set(".+()|{}$")


def clean(path: str) -> str:
    """Go's path.Clean: lexical, `""` is `.`, never a leading `//`."""
    if not path:
        return "."
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


@dataclass
class Pattern:
    """One cleaned pattern; `exclusion` is True for `!` lines (re-include)."""
    text: str
    exclusion: bool = False
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            self.regex = re.compile(_glob_regex(self.text, whole=True))
        except (re.error, ValueError):
            raise InvalidArgument(f"syntax error in pattern {self.text!r}") from None

    @property
    def dirs(self) -> list[str]:
        return self.text.split("/")

    def match(self, path: str) -> bool:
        return self.regex.match(path) is not None


def _glob_regex(pattern: str, *, whole: bool) -> str:
    """Translate a docker pattern to a regex (patternmatcher's compile, minus its
    fast paths, which match the same strings)."""
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*" and whole and pattern[i:i + 1] == "*":
            i += 1
            if pattern[i:i + 1] == "/":
                i += 1
            out.append(".*" if i == n else "(.*/)?")
        elif ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i < n:
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append("\\\\")
        elif ch in "[]":
            out.append(ch)
        elif ch in _ESCAPED:
            out.append("\\" + ch)
        else:
            out.append(ch)
    out.append("$")
    return "".join(out)


def _suffix_fast_path(pattern: str, path: str) -> bool | None:
    """patternmatcher matches `**/x` (no other wildcard) by suffix, which differs from
    the regex only for odd inputs; keep its answer."""
    if not pattern.startswith("**") or any(c in pattern[2:] for c in "*?[]\\"):
        return None
    suffix = pattern[2:]
    if not suffix:
        return True
    return path.endswith(suffix) or (suffix[0] == "/" and path == suffix[1:])


def parse_line(line: str) -> str | None:
    """One line of an ignore file as patternmatcher's ReadAll returns it, or None."""
    if line.startswith("#"):
        return None
    line = line.strip()
    if not line:
        return None
    invert = line.startswith("!")
    if invert:
        line = line[1:].strip()
    if line:
        line = clean(line)
        if len(line) > 1 and line.startswith("/"):
            line = line[1:]
    return "!" + line if invert else line


def read(source: str) -> list[Pattern]:
    """Patterns from an ignore file's path, or from its text when `source` has a newline
    or is not an existing file."""
    if "\n" not in source and os.path.isfile(source):
        with open(source, encoding="utf-8", errors="surrogateescape") as f:
            source = f.read()
    if source.startswith("\ufeff"):
        source = source[1:]
    lines = [parse_line(line) for line in source.split("\n")]
    return compile_patterns([line for line in lines if line is not None])


def compile_patterns(lines: list[str]) -> list[Pattern]:
    """patternmatcher.New: trim, clean, split off `!`; `!` alone is refused."""
    patterns = []
    for text in lines:
        text = text.strip()
        if not text:
            continue
        text = clean(text)
        exclusion = text.startswith("!")
        if exclusion:
            if len(text) == 1:
                raise InvalidArgument('illegal exclusion pattern: "!"')
            text = text[1:]
        patterns.append(Pattern(text, exclusion))
    return patterns


class Matcher:
    """Answers "is this context path ignored?" for a list of patterns."""

    def __init__(self, patterns: list[Pattern]) -> None:
        self.patterns = patterns
        self.exclusions = any(p.exclusion for p in patterns)

    def _pattern_matches(self, pattern: Pattern, path: str) -> bool:
        fast = _suffix_fast_path(pattern.text, path)
        return pattern.match(path) if fast is None else fast

    def matches(self, relpath: str) -> bool:
        """True when `relpath` (relative, `/`-separated) is ignored: the last pattern
        that matches it or one of its parents decides."""
        path = clean(relpath)
        parent = posixpath.dirname(path) or "."
        parents = [] if parent == "." else _prefixes(parent)
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            hit = self._pattern_matches(pattern, path) or any(
                self._pattern_matches(pattern, p) for p in parents)
            if hit:
                matched = not pattern.exclusion
        return matched

    def can_skip_dir(self, relpath: str) -> bool:
        """True when `relpath` is ignored and no exception could re-include anything
        below it, so a walk need not descend into it."""
        if not self.matches(relpath):
            return False
        dirs = clean(relpath).split("/")
        return not any(p.exclusion and _could_match_below(p.dirs, dirs)
                       for p in self.patterns)


def _prefixes(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i + 1]) for i in range(len(parts))]


def _could_match_below(pattern_dirs: list[str], dirs: list[str]) -> bool:
    """Whether a pattern, compared component by component, could match some path
    inside `dirs`; a `**` anywhere before a mismatch means it could."""
    for i, component in enumerate(dirs):
        if i >= len(pattern_dirs):
            return True  # the pattern matches a parent of dirs: everything inside
        if "**" in pattern_dirs[i]:
            return True
        if not re.match(_glob_regex(pattern_dirs[i], whole=False), component):
            return False
    return True


def ignore_file_for(context_dir: str, dockerfile_path: str | None = None) -> str | None:
    """The ignore file that applies: `<Dockerfile>.dockerignore` next to the Dockerfile
    when it exists, else the context's `.dockerignore`, else None."""
    if dockerfile_path:
        path = dockerfile_path
        if not os.path.isabs(path):
            path = os.path.join(context_dir, path)
        specific = path + ".dockerignore"
        if os.path.isfile(specific):
            return specific
    default = os.path.join(context_dir, ".dockerignore")
    return default if os.path.isfile(default) else None
