"""Docker's flag grammar (cobra/pflag), with argparse's add_argument spelling.

    p = FlagParser("rm", "kade rm [OPTIONS] CONTAINER [CONTAINER...]")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    ns = p.parse_args(["-f", "web"])

What docker accepts: `--name=v`, `--name v`, `-n v`, `-nv`, `-n=v`, bool flags
as `--rm` or `--rm=false`, short bools combined (`-it`, `-itd`), `--` to end
flags, and flags after positionals, except where a positional takes the rest
of the line (`nargs="..."`: `run IMAGE CMD...`), which stops flag parsing like
cobra's SetInterspersed(false). Unlike argparse there are no abbreviations
(`--no-tr` is unknown, as in docker). Errors use pflag's and cobra's words.

It exists because argparse costs ~10 ms of imports (re, shutil, gettext,
locale) on every `kade ps`.
"""

from __future__ import annotations

import sys

_TRUE = {"true", "1", "t", "T", "TRUE", "True"}
_FALSE = {"false", "0", "f", "F", "FALSE", "False"}


class UsageError(Exception):
    """A bad flag or argument: printed with a `See 'kade VERB --help'.` hint."""


TYPE_CHECKING = False  # not `from typing`: every verb parses its flags here
if TYPE_CHECKING:
    from typing import Any


class Namespace:
    if TYPE_CHECKING:  # the flags a parser declared: as many attributes, of any type
        def __getattr__(self, name: str) -> Any: ...
        def __setattr__(self, name: str, value: Any) -> None: ...

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __repr__(self) -> str:
        return f"Namespace({self.__dict__!r})"


class _Flag:
    def __init__(self, names: tuple[str, ...], kw: dict):
        self.names = names
        self.long = next((n[2:] for n in names if n.startswith("--")), None)
        self.short = next((n[1:] for n in names if not n.startswith("--")), None)
        self.action = kw.get("action", "store")
        self.dest = kw.get("dest") or (self.long or self.short or "").replace("-", "_")
        self.type = kw.get("type")
        self.choices = kw.get("choices")
        self.help = kw.get("help", "")
        self.hidden = kw.get("hidden", False)
        self.metavar = kw.get("metavar")
        default = kw.get("default")
        if default is None and self.action == "store_true":
            default = False
        self.default = default

    @property
    def takes_value(self) -> bool:
        return self.action not in ("store_true", "help")

    def type_name(self) -> str:
        """pflag's name for the value a flag takes, shown in --help."""
        if not self.takes_value:
            return ""
        if self.metavar:
            return self.metavar
        if self.action == "append":
            return "list"
        return "int" if self.type is int else "string"

    def default_note(self) -> str:
        """pflag's " (default x)", for a default that is not the type's zero value."""
        d = self.default
        if d is None or d is False or d == 0 or d == "" or isinstance(d, list):
            return ""
        if d is True:
            return " (default true)"
        return f' (default "{d}")' if isinstance(d, str) and self.type_name() == "string" \
            else f" (default {d})"

    def label(self) -> str:
        return ", ".join(f"-{self.short}" if n == self.short else f"--{n}"
                         for n in (self.short, self.long) if n)


class _Positional:
    def __init__(self, name: str, kw: dict):
        self.dest = name
        self.nargs = kw.get("nargs")
        self.metavar = kw.get("metavar") or name.upper()


class FlagParser:
    """`-h` asks for help too, unless the verb gives -h a meaning of its own (as
    `run -h HOSTNAME`); --help is listed only where docker lists it (run, create)."""

    def __init__(self, verb: str, usage: str):
        self.verb, self.usage = verb, usage
        self._flags: list[_Flag] = []
        self._by_name: dict[str, _Flag] = {}
        self._positionals: list[_Positional] = []
        self.add_argument("--help", action="help", help="Print usage",
                          hidden=verb not in ("run", "create"))

    def add_argument(self, *names: str, **kw) -> None:
        if names[0].startswith("-"):
            flag = _Flag(names, kw)
            self._flags.append(flag)
            for n in names:
                self._by_name[n] = flag
        else:
            self._positionals.append(_Positional(names[0], kw))

    # --- parsing --------------------------------------------------------------
    def parse_args(self, args: list[str]) -> Namespace:
        values: dict = {}
        positional: list[str] = []
        rest_after = self._positionals and self._positionals[-1].nargs == "..."
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                positional += args[i + 1:]
                break
            if rest_after and positional and len(positional) >= len(self._positionals) - 1:
                positional += args[i:]  # `run IMAGE CMD...`: the rest is the command's
                break
            if arg.startswith("--") and len(arg) > 2:
                i = self._long(args, i, values)
            elif arg.startswith("-") and len(arg) > 1:
                i = self._shorts(args, i, values)
            else:
                positional.append(arg)
                i += 1
        return self._namespace(values, positional)

    def _long(self, args: list[str], i: int, values: dict) -> int:
        name, eq, value = args[i][2:].partition("=")
        flag = self._by_name.get("--" + name)
        if flag is None:
            raise UsageError(f"unknown flag: --{name}")
        if not flag.takes_value:
            self._set(flag, value if eq else None, values)
            return i + 1
        if not eq:
            if i + 1 >= len(args):
                raise UsageError(f"flag needs an argument: --{name}")
            i, value = i + 1, args[i + 1]
        self._set(flag, value, values)
        return i + 1

    def _shorts(self, args: list[str], i: int, values: dict) -> int:
        letters = args[i][1:]
        for j, letter in enumerate(letters):
            flag = self._by_name.get("-" + letter)
            if flag is None and letter == "h":
                flag = self._by_name["--help"]
            if flag is None:
                raise UsageError(f"unknown shorthand flag: '{letter}' in -{letters}")
            if not flag.takes_value:
                if letters[j + 1:j + 2] == "=":  # `-p=false`
                    self._set(flag, letters[j + 2:], values)
                    return i + 1
                self._set(flag, None, values)
                continue
            value = letters[j + 1:]
            if value:
                self._set(flag, value[1:] if value.startswith("=") else value, values)
                return i + 1
            if i + 1 >= len(args):
                raise UsageError(f"flag needs an argument: '{letter}' in -{letters}")
            self._set(flag, args[i + 1], values)
            return i + 2
        return i + 1

    def _set(self, flag: _Flag, raw: str | None, values: dict) -> None:
        if flag.action == "help":
            self.print_help()
            raise SystemExit(0)
        if flag.action == "store_true":
            values[flag.dest] = _bool(raw, flag) if raw is not None else True
            return
        value = self._convert(flag, raw)
        if flag.action == "append":
            values.setdefault(flag.dest, []).append(value)
        else:
            values[flag.dest] = value

    def _convert(self, flag: _Flag, raw: str | None):
        if flag.choices and raw not in flag.choices:
            raise UsageError(f'invalid argument "{raw}" for "{flag.label()}" flag: '
                             f"must be one of {', '.join(flag.choices)}")
        if flag.type is None:
            return raw
        try:
            return flag.type(raw)
        except ValueError:
            raise UsageError(f'invalid argument "{raw}" for "{flag.label()}" flag: '
                             f'strconv.ParseInt: parsing "{raw}": invalid syntax') from None

    def _namespace(self, values: dict, positional: list[str]) -> Namespace:
        ns = {f.dest: (list(f.default) if isinstance(f.default, list) else f.default)
              for f in self._flags if f.action != "help"}
        ns.update(values)
        ns.update(self._bind(positional))
        return Namespace(**ns)

    def _bind(self, positional: list[str]) -> dict:
        out: dict = {}
        specs = self._positionals
        need = sum(1 for p in specs if p.nargs in (None, "+"))
        if len(positional) < need:
            raise UsageError(self._count_error())
        i = 0
        for n, p in enumerate(specs):
            left_for_later = sum(1 for q in specs[n + 1:] if q.nargs in (None, "+"))
            if p.nargs is None:
                out[p.dest], i = positional[i], i + 1
            elif p.nargs == "?":
                take = len(positional) - i - left_for_later > 0
                out[p.dest] = positional[i] if take else None
                i += take
            else:  # "+", "*", "...": everything but what later ones need
                end = len(positional) - left_for_later
                out[p.dest], i = positional[i:end], end
        if i < len(positional):
            raise UsageError(self._count_error())
        return out

    def _count_error(self) -> str:
        specs = self._positionals
        least = sum(1 for p in specs if p.nargs in (None, "+"))
        exact = all(p.nargs is None for p in specs)
        if not specs:
            return f'"kade {self.verb}" accepts no arguments.'
        if exact:
            word = "argument" if least == 1 else "arguments"
            return f'"kade {self.verb}" requires exactly {least} {word}.'
        word = "argument" if least == 1 else "arguments"
        return f'"kade {self.verb}" requires at least {least} {word}.'

    # --- help -----------------------------------------------------------------
    def print_help(self) -> None:
        """Docker 20.10's help: usage, the command's one line, its options as pflag
        lays them out (descriptions in one column, wrapped at 80)."""
        from kade.cli.usage import describe
        text = f"\nUsage:  {self.usage}\n\n{describe(self.verb)}\n"
        options = self.option_lines()
        if options:
            text += "\nOptions:\n" + "\n".join(options) + "\n"
        sys.stdout.write(text)

    def visible_flags(self) -> list[_Flag]:
        """In pflag's order: sorted by name."""
        return sorted((f for f in self._flags if not f.hidden),
                      key=lambda f: f.long or f.short or "")

    def option_lines(self, width: int = 80) -> list[str]:
        flags = self.visible_flags()
        heads = []
        for f in flags:
            head = f"  -{f.short}, --{f.long}" if f.short and f.long else (
                f"      --{f.long}" if f.long else f"  -{f.short}")
            heads.append(head + (f" {f.type_name()}" if f.type_name() else ""))
        column = max((len(h) for h in heads), default=0) + 3
        return [head.ljust(column) + _wrap(f.help + f.default_note(), column, width - 1)
                for head, f in zip(heads, flags)]


def _wrap(text: str, indent: int, width: int) -> str:
    """pflag's wrap: words to width-indent columns, continuation lines indented; not
    at all when fewer than 24 columns would be left."""
    room = width - indent
    if room < 24:
        return text
    out: list[str] = []
    for para in text.split("\n"):
        line = ""
        for word in para.split(" "):
            if line and len(line) + 1 + len(word) > room:
                out.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        out.append(line)
    return ("\n" + " " * indent).join(out)


def _bool(raw: str, flag: _Flag) -> bool:
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise UsageError(f'invalid argument "{raw}" for "{flag.label()}" flag: '
                     f'strconv.ParseBool: parsing "{raw}": invalid syntax')
