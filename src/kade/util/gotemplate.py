"""A subset of Go's text/template, as docker's ``--format`` uses it.

    >>> render("{{.Repository}}:{{.Tag}}", {"Repository": "busybox", "Tag": "latest"})
    'busybox:latest'

Supported: ``{{.Field.Chain}}``, ``$`` and ``.``, variables (``$x := p``, ``$x = p``),
pipelines (``|``), parentheses, ``if``/``else if``/``else``, ``range`` (with
``$i, $v :=``, ``else``, ``break``, ``continue``), ``with``/``else with``, ``define``,
``template``, ``block``, ``{{-``/``-}}`` trim markers, comments, string (quoted, raw,
char) number and bool literals, Go's builtin functions and docker's template funcs
(json, split, join, title, lower, upper, pad, truncate).

How Python values stand in for Go's:

- A mapping is a Go map: ``.Key`` on a missing key is "no value" (prints
  ``<no value>``), ``range`` walks its keys sorted, printing gives ``map[k:v]``.
  Plain dicts keep insertion order for ``json`` (they usually mirror a Go struct).
  A mapping whose class names a ``go_struct`` (docker's ``*formatter.ContainerContext``)
  stands for that struct: a missing key is "can't evaluate field".
- Any other object is a Go struct: ``.Name`` is an attribute (properties work);
  a missing one is an execution error, like Go's "can't evaluate field".
- A callable found by ``.Name`` (a method, or a callable dict value) is called as a
  Go method, with the command's arguments.
- ``None`` is Go's nil: it prints ``<nil>`` and ``.Field`` on it is an error.

Errors, parse or execution, raise ``kade.errors.InvalidArgument`` with docker's
one-line wording: ``template parsing error: template: :1: unexpected "}" in operand``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping


from kade.errors import InvalidArgument

TYPE_CHECKING = False  # not `from typing`: importing typing costs ~3 ms on `kade ps`
if TYPE_CHECKING:
    from typing import Any, NoReturn

__all__ = ["HEADER_FUNCS", "NO_VALUE", "Template", "compile", "render"]


class _NoValue:
    """Go's invalid reflect.Value: what a missing map key evaluates to."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_VALUE"

    def __bool__(self) -> bool:
        return False


NO_VALUE: Any = _NoValue()
_MISSING: Any = object()  # "no final argument from the previous pipeline stage"

_SPACE = " \t\r\n"
_KEYWORDS = frozenset(
    {"block", "break", "continue", "define", "else", "end", "if", "range", "nil", "template",
     "with"}
)


class _ParseError(Exception):
    pass


class _ExecError(Exception):
    pass


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


# ---------------------------------------------------------------------------
# Lexer: the template becomes a flat list of tokens (kind, value, pos).
# Kinds are short strings; inside an action they follow Go's lexer items.


class _Tok:
    __slots__ = ("kind", "pos", "val")

    def __init__(self, kind: str, val: str, pos: int) -> None:
        self.kind = kind
        self.val = val
        self.pos = pos

    def __str__(self) -> str:  # Go's item.String(), used in "unexpected X" messages
        if self.kind == "eof":
            return "EOF"
        if self.kind == "keyword":
            return f"<{self.val}>"
        if self.kind == "right":
            return '"}}"'
        if self.kind == "left":
            return '"{{"'
        if len(self.val) > 10:
            return _go_quote(self.val[:10]) + "..."
        return _go_quote(self.val)


def _is_alnum(c: str) -> bool:
    return c == "_" or c.isalnum()


def _right_delim_at(src: str, p: int) -> int:
    """Length of the right delimiter at p (4 with a trim marker), or 0."""
    if src.startswith("}}", p):
        return 2
    if p < len(src) and src[p] in _SPACE and src.startswith("-}}", p + 1):
        return 4
    return 0


class _Lexer:
    def __init__(self, src: str) -> None:
        self.src = src
        self.toks: list[_Tok] = []

    def emit(self, kind: str, start: int, end: int) -> None:
        self.toks.append(_Tok(kind, self.src[start:end], start))

    def error(self, msg: str, pos: int) -> list[_Tok]:
        self.toks.append(_Tok("error", msg, pos))
        return self.toks

    def run(self) -> list[_Tok]:
        src, pos = self.src, 0
        while True:
            i = src.find("{{", pos)
            if i < 0:
                if pos < len(src):
                    self.emit("text", pos, len(src))
                self.toks.append(_Tok("eof", "", len(src)))
                return self.toks
            trim = src.startswith("-", i + 2) and i + 3 < len(src) and src[i + 3] in _SPACE
            end = len(src[pos:i].rstrip(_SPACE)) + pos if trim else i
            if end > pos:
                self.emit("text", pos, end)
            p = i + (4 if trim else 2)
            if src.startswith("/*", p):
                p = self.comment(p, i)
            else:
                self.toks.append(_Tok("left", "{{", i))
                p = self.action(p)
            if p < 0:
                return self.toks
            pos = p

    def skip_after_right(self, p: int, width: int) -> int:
        p += width
        if width == 4:  # "-}}": trim the spaces that follow
            while p < len(self.src) and self.src[p] in _SPACE:
                p += 1
        return p

    def comment(self, p: int, start: int) -> int:
        end = self.src.find("*/", p + 2)
        if end < 0:
            self.error("unclosed comment", start)
            return -1
        width = _right_delim_at(self.src, end + 2)
        if not width:
            self.error("comment ends before closing delimiter", start)
            return -1
        return self.skip_after_right(end + 2, width)

    def action(self, p: int) -> int:
        src, n, depth = self.src, len(self.src), 0
        while True:
            width = _right_delim_at(src, p)
            if width:
                if depth:
                    self.error("unclosed left paren", p)
                    return -1
                self.toks.append(_Tok("right", "}}", p))
                return self.skip_after_right(p, width)
            if p >= n:
                self.error("unclosed action", p)
                return -1
            c = src[p]
            start = p
            if c in _SPACE:
                while p < n and src[p] in _SPACE and _right_delim_at(src, p) != 4:
                    p += 1
                if p > start:
                    self.emit("space", start, p)
                continue
            if c == "(":
                depth += 1
                kind, p = "lparen", p + 1
            elif c == ")":
                depth -= 1
                if depth < 0:
                    self.error("unexpected right paren", p)
                    return -1
                kind, p = "rparen", p + 1
            elif c == "|":
                kind, p = "pipe", p + 1
            elif c == "=":
                kind, p = "assign", p + 1
            elif c == ":":
                if not src.startswith(":=", p):
                    self.error("expected :=", p)
                    return -1
                kind, p = "declare", p + 2
            elif c in "\"`'":
                kind, p = self.quoted(p)
            elif c == "$" or (c == "." and not src[p + 1 : p + 2].isdigit()):
                kind, p = self.field_or_variable(p)
            elif c in "+-.0123456789":
                kind, p = self.number(p)
            elif _is_alnum(c):
                kind, p = self.identifier(p)
            elif c.isascii() and c.isprintable():
                kind, p = "char", p + 1
            else:
                self.error(f"unrecognized character in action: {_unicode_name(c)}", p)
                return -1
            if kind == "error":
                return -1
            self.emit(kind, start, p)

    def quoted(self, p: int) -> tuple[str, int]:
        src = self.src
        q = src[p]
        i = p + 1
        while i < len(src):
            c = src[i]
            if c == q:
                kind = {"`": "rawstring", '"': "string", "'": "charconst"}[q]
                return kind, i + 1
            if c == "\\" and q != "`":
                if src[i + 1 : i + 2] in ("", "\n"):
                    break
                i += 2
                continue
            if c == "\n" and q != "`":
                break
            i += 1
        what = {"`": "raw quoted string", '"': "quoted string", "'": "character constant"}
        self.error(f"unterminated {what[q]}", p)
        return "error", -1

    def field_or_variable(self, p: int) -> tuple[str, int]:
        src = self.src
        i = p + 1
        while i < len(src) and _is_alnum(src[i]):
            i += 1
        if not self.at_terminator(i):
            self.error(f"bad character {_unicode_name(src[i])}", i)
            return "error", -1
        if src[p] == "$":
            return "variable", i
        return ("dot" if i == p + 1 else "field"), i

    def at_terminator(self, i: int) -> bool:
        if i >= len(self.src):
            return True
        c = self.src[i]
        return c in _SPACE or c in ".,|:()" or _right_delim_at(self.src, i) > 0

    def identifier(self, p: int) -> tuple[str, int]:
        src = self.src
        i = p
        while i < len(src) and _is_alnum(src[i]):
            i += 1
        if not self.at_terminator(i):
            self.error(f"bad character {_unicode_name(src[i])}", i)
            return "error", -1
        word = src[p:i]
        if word in _KEYWORDS:
            return ("nil" if word == "nil" else "keyword"), i
        if word in ("true", "false"):
            return "bool", i
        return "identifier", i

    def number(self, p: int) -> tuple[str, int]:
        src, n = self.src, len(self.src)
        i = p
        if i < n and src[i] in "+-":
            i += 1
        digits = "0123456789_"
        if src.startswith("0", i):
            i += 1
            if i < n and src[i] in "xXoObB":
                digits = {"x": "0123456789abcdefABCDEF_", "o": "01234567_", "b": "01_"}[
                    src[i].lower()
                ]
                i += 1
        while i < n and src[i] in digits:
            i += 1
        if i < n and src[i] == ".":
            i += 1
            while i < n and src[i] in digits:
                i += 1
        if len(digits) == 11 and i < n and src[i] in "eE":
            i += 1
            if i < n and src[i] in "+-":
                i += 1
            while i < n and src[i] in "0123456789_":
                i += 1
        if i < n and src[i] == "i":
            i += 1
        if i < n and _is_alnum(src[i]):
            self.error(f"bad number syntax: {_go_quote(src[p : i + 1])}", p)
            return "error", -1
        return "number", i


def _unicode_name(c: str) -> str:
    return f"U+{ord(c):04X} {_go_quote_rune(c)}"


# ---------------------------------------------------------------------------
# Parse tree. Each node knows its source position (for error context) and
# renders itself back to template text, as Go's nodes do for messages.


class _Node:
    __slots__ = ("pos",)

    def __init__(self, pos: int) -> None:
        self.pos = pos


class _Text(_Node):
    __slots__ = ("text",)

    def __init__(self, pos: int, text: str) -> None:
        super().__init__(pos)
        self.text = text


class _Field(_Node):
    __slots__ = ("idents",)

    def __init__(self, pos: int, idents: list[str]) -> None:
        super().__init__(pos)
        self.idents = idents

    def __str__(self) -> str:
        return "".join("." + i for i in self.idents)


class _Variable(_Node):
    __slots__ = ("idents",)

    def __init__(self, pos: int, idents: list[str]) -> None:
        super().__init__(pos)
        self.idents = idents  # idents[0] is "$name"

    def __str__(self) -> str:
        return ".".join(self.idents)


class _Chain(_Node):
    __slots__ = ("fields", "node")

    def __init__(self, pos: int, node: _Node, fields: list[str]) -> None:
        super().__init__(pos)
        self.node = node
        self.fields = fields

    def __str__(self) -> str:
        inner = f"({self.node})" if isinstance(self.node, _Pipe) else str(self.node)
        return inner + "".join("." + f for f in self.fields)


class _Identifier(_Node):
    __slots__ = ("name",)

    def __init__(self, pos: int, name: str) -> None:
        super().__init__(pos)
        self.name = name

    def __str__(self) -> str:
        return self.name


class _Literal(_Node):
    """A bool, number, string, nil or dot: evaluates to a constant (or to dot)."""

    __slots__ = ("is_dot", "is_nil", "text", "value")

    def __init__(self, pos: int, value: Any, text: str, is_dot: bool = False,
                 is_nil: bool = False) -> None:
        super().__init__(pos)
        self.value = value
        self.text = text
        self.is_dot = is_dot
        self.is_nil = is_nil

    def __str__(self) -> str:
        return self.text


class _Command(_Node):
    __slots__ = ("args",)

    def __init__(self, pos: int) -> None:
        super().__init__(pos)
        self.args: list[_Node] = []

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, _Pipe) else str(a) for a in self.args)


class _Pipe(_Node):
    __slots__ = ("cmds", "decl", "is_assign")

    def __init__(self, pos: int) -> None:
        super().__init__(pos)
        self.decl: list[str] = []
        self.is_assign = False
        self.cmds: list[_Command] = []

    def __str__(self) -> str:
        head = ""
        if self.decl:
            head = ", ".join(self.decl) + (" = " if self.is_assign else " := ")
        return head + " | ".join(str(c) for c in self.cmds)


class _Action(_Node):
    __slots__ = ("pipe",)

    def __init__(self, pos: int, pipe: _Pipe) -> None:
        super().__init__(pos)
        self.pipe = pipe

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


class _Control(_Node):
    """if, range and with: a pipeline, a body and an optional else body."""

    __slots__ = ("body", "else_body", "kind", "pipe")

    def __init__(self, kind: str, pipe: _Pipe, body: list[_Node],
                 else_body: list[_Node] | None) -> None:
        super().__init__(pipe.pos)
        self.kind = kind
        self.pipe = pipe
        self.body = body
        self.else_body = else_body


class _Invoke(_Node):
    """{{template "name" pipeline}}."""

    __slots__ = ("name", "pipe")

    def __init__(self, pos: int, name: str, pipe: _Pipe | None) -> None:
        super().__init__(pos)
        self.name = name
        self.pipe = pipe

    def __str__(self) -> str:
        pipe = f" {self.pipe}" if self.pipe else ""
        return f"{{{{template {_go_quote(self.name)}{pipe}}}}}"


class _Marker(_Node):
    """{{end}}, {{else}}, {{break}}, {{continue}}."""

    __slots__ = ("word",)

    def __init__(self, pos: int, word: str) -> None:
        super().__init__(pos)
        self.word = word

    def __str__(self) -> str:
        return "{{" + self.word + "}}"


_OPERAND_START = frozenset(
    {"bool", "charconst", "dot", "field", "identifier", "number", "nil", "rawstring", "string",
     "variable", "lparen"}
)


class _Parser:
    def __init__(self, src: str, funcs: Mapping[str, Any]) -> None:
        self.src = src
        self.funcs = funcs
        self.toks = _Lexer(src).run()
        self.i = 0
        self.vars = ["$"]
        self.range_depth = 0
        self.defines: dict[str, list[_Node]] = {}
        self.last = _Tok("", "", 0)

    # token stream: the list ends with an "eof" or "error" token, which
    # next() keeps returning, so backup() is always a plain step back.
    def next(self) -> _Tok:
        tok = self.peek()
        self.i += 1
        self.last = tok
        return tok

    def peek(self) -> _Tok:
        tok = self.toks[min(self.i, len(self.toks) - 1)]
        if tok.kind == "error":
            self.error(tok.val, tok)
        return tok

    def next_non_space(self) -> _Tok:
        tok = self.next()
        while tok.kind == "space":
            tok = self.next()
        return tok

    def peek_non_space(self) -> _Tok:
        tok = self.next_non_space()
        self.backup()
        return tok

    def backup(self) -> None:
        self.i -= 1

    def error(self, msg: str, tok: _Tok | None = None) -> NoReturn:
        pos = (tok or self.last).pos
        line = self.src.count("\n", 0, pos) + 1
        raise _ParseError(f"template: :{line}: {msg}")

    def unexpected(self, tok: _Tok, context: str) -> NoReturn:
        if tok.kind == "error":
            self.error(tok.val, tok)
        self.error(f"unexpected {tok} in {context}", tok)

    def expect(self, kind: str, context: str) -> _Tok:
        tok = self.next_non_space()
        if tok.kind != kind:
            self.unexpected(tok, context)
        return tok

    # structure ------------------------------------------------------------
    def parse(self) -> list[_Node]:
        root: list[_Node] = []
        while self.peek().kind != "eof":
            if self.peek().kind == "left" and self.is_define():
                continue
            node = self.text_or_action()
            if isinstance(node, _Marker) and node.word in ("end", "else"):
                self.error(f"unexpected {node}")
            root.append(node)
        return root

    def is_define(self) -> bool:
        mark = self.i
        self.next()
        tok = self.next_non_space()
        if tok.kind == "keyword" and tok.val == "define":
            self.parse_definition()
            return True
        self.i = mark
        return False

    def parse_definition(self) -> None:
        context = "define clause"
        name = self.template_name(self.next_non_space(), context)
        self.expect("right", context)
        outer_vars, self.vars = self.vars, ["$"]
        body, end = self.item_list()
        self.vars = outer_vars
        if end.word != "end":
            self.error(f"unexpected {end} in {context}")
        self.defines[name] = body

    def item_list(self) -> tuple[list[_Node], _Marker]:
        items: list[_Node] = []
        while self.peek_non_space().kind != "eof":
            node = self.text_or_action()
            if isinstance(node, _Marker) and node.word in ("end", "else"):
                return items, node
            items.append(node)
        self.error("unexpected EOF")


    def text_or_action(self) -> _Node:
        tok = self.next_non_space()
        if tok.kind == "text":
            return _Text(tok.pos, tok.val)
        if tok.kind == "left":
            return self.action()
        self.unexpected(tok, "input")


    def action(self) -> _Node:
        tok = self.next_non_space()
        if tok.kind == "keyword":
            handler = getattr(self, "kw_" + tok.val, None)
            if handler is not None:
                return handler(tok)  # type: ignore[no-any-return]
        self.backup()
        pos = self.peek().pos
        return _Action(pos, self.pipeline("command", "right"))

    def kw_end(self, tok: _Tok) -> _Node:
        self.expect("right", "end")
        return _Marker(tok.pos, "end")

    def kw_else(self, tok: _Tok) -> _Node:
        nxt = self.peek_non_space()
        if nxt.kind == "keyword" and nxt.val in ("if", "with"):
            return _Marker(tok.pos, "else")  # "if"/"with" stays pending for control()
        self.expect("right", "else")
        return _Marker(tok.pos, "else")

    def kw_break(self, tok: _Tok) -> _Node:
        return self.loop_marker(tok, "break")

    def kw_continue(self, tok: _Tok) -> _Node:
        return self.loop_marker(tok, "continue")

    def loop_marker(self, tok: _Tok, word: str) -> _Node:
        nxt = self.next_non_space()
        if nxt.kind != "right":
            self.unexpected(nxt, "{{" + word + "}}")
        if not self.range_depth:
            self.error(f"{{{{{word}}}}} outside {{{{range}}}}")
        return _Marker(tok.pos, word)

    def kw_if(self, tok: _Tok) -> _Node:
        return self.control("if")

    def kw_with(self, tok: _Tok) -> _Node:
        return self.control("with")

    def kw_range(self, tok: _Tok) -> _Node:
        return self.control("range")

    def control(self, kind: str) -> _Control:
        mark = len(self.vars)
        pipe = self.pipeline(kind, "right")
        if kind == "range":
            self.range_depth += 1
        body, end = self.item_list()
        if kind == "range":
            self.range_depth -= 1
        else_body: list[_Node] | None = None
        if end.word == "else":
            nxt = self.peek()
            if kind in ("if", "with") and nxt.kind == "keyword" and nxt.val == kind:
                self.next()
                else_body = [self.control(kind)]  # "else if": shares our {{end}}
            else:
                else_body, end = self.item_list()
                if end.word != "end":
                    self.error(f"expected end; found {end}")
        del self.vars[mark:]
        return _Control(kind, pipe, body, else_body)

    def kw_template(self, tok: _Tok) -> _Node:
        context = "template clause"
        name = self.template_name(self.next_non_space(), context)
        pipe = None
        if self.next_non_space().kind != "right":
            self.backup()
            pipe = self.pipeline(context, "right")
        return _Invoke(tok.pos, name, pipe)

    def kw_block(self, tok: _Tok) -> _Node:
        context = "block clause"
        name = self.template_name(self.next_non_space(), context)
        pipe = self.pipeline(context, "right")
        outer_vars, self.vars = self.vars, ["$"]
        body, end = self.item_list()
        self.vars = outer_vars
        if end.word != "end":
            self.error(f"unexpected {end} in {context}")
        self.defines[name] = body
        return _Invoke(tok.pos, name, pipe)

    def template_name(self, tok: _Tok, context: str) -> str:
        if tok.kind not in ("string", "rawstring"):
            self.unexpected(tok, context)
        return _unquote(tok.val, tok, self)

    # pipelines --------------------------------------------------------------
    def pipeline(self, context: str, end: str) -> _Pipe:
        pipe = _Pipe(self.peek_non_space().pos)
        self.declarations(pipe, context)
        while True:
            tok = self.next_non_space()
            if tok.kind == end:
                self.check_pipeline(pipe, context)
                return pipe
            if tok.kind in _OPERAND_START:
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(tok, context)

    def declarations(self, pipe: _Pipe, context: str) -> None:
        while True:
            mark = self.i
            var = self.next_non_space()
            if var.kind != "variable":
                self.i = mark
                return
            nxt = self.next_non_space()
            if nxt.kind in ("declare", "assign"):
                pipe.is_assign = nxt.kind == "assign"
                pipe.decl.append(var.val)
                if pipe.is_assign:
                    self.use_var(var)
                else:
                    self.vars.append(var.val)
                return
            if nxt.kind == "char" and nxt.val == ",":
                pipe.decl.append(var.val)
                self.vars.append(var.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().kind in ("variable", "right", "rparen"):
                        continue
                    self.error("range can only initialize variables")
                self.error(f"too many declarations in {context}")
            self.i = mark
            return

    def check_pipeline(self, pipe: _Pipe, context: str) -> None:
        if not pipe.cmds:
            self.error(f"missing value for {context}")
        for i, cmd in enumerate(pipe.cmds[1:]):
            if isinstance(cmd.args[0], _Literal):
                self.error(f"non executable command in pipeline stage {i + 2}")

    def command(self) -> _Command:
        cmd = _Command(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.kind == "space":
                continue
            if tok.kind in ("right", "rparen"):
                self.backup()
            elif tok.kind != "pipe":
                self.unexpected(tok, "operand")
            break
        if not cmd.args:
            self.error("empty command")
        return cmd

    def operand(self) -> _Node | None:
        node = self.term()
        if node is None or self.peek().kind != "field":
            return node
        pos = self.peek().pos  # Go places a chain at its first trailing field
        fields = []
        while self.peek().kind == "field":
            fields.append(self.next().val[1:])
        if isinstance(node, _Field):
            return _Field(pos, node.idents + fields)
        if isinstance(node, _Variable):
            return _Variable(pos, node.idents + fields)
        if isinstance(node, _Literal):
            self.error(f"unexpected . after term {_go_quote(str(node))}")
        return _Chain(pos, node, fields)

    def term(self) -> _Node | None:
        tok = self.next_non_space()
        kind, val, pos = tok.kind, tok.val, tok.pos
        if kind == "identifier":
            if val not in self.funcs and val not in _BUILTINS:
                self.error(f"function {_go_quote(val)} not defined")
            return _Identifier(pos, val)
        if kind == "dot":
            return _Literal(pos, None, ".", is_dot=True)
        if kind == "nil":
            return _Literal(pos, None, "nil", is_nil=True)
        if kind == "variable":
            return self.use_var(tok)
        if kind == "field":
            return _Field(pos, [val[1:]])
        if kind == "bool":
            return _Literal(pos, val == "true", val)
        if kind in ("number", "charconst"):
            return _Literal(pos, self.number(tok), val)
        if kind == "lparen":
            return self.pipeline("parenthesized pipeline", "rparen")
        if kind in ("string", "rawstring"):
            return _Literal(pos, _unquote(val, tok, self), val)
        self.backup()
        return None

    def use_var(self, tok: _Tok) -> _Variable:
        if tok.val not in self.vars:
            self.error(f"undefined variable {_go_quote(tok.val)}", tok)
        return _Variable(tok.pos, [tok.val])

    def number(self, tok: _Tok) -> int | float:
        text = tok.val
        if tok.kind == "charconst":
            value = _unquote('"' + text[1:-1].replace('"', '\\"') + '"', tok, self)
            if len(value) != 1:
                self.error(f"malformed character constant: {text}")
            return ord(value)
        if text.endswith("i"):
            self.error(f"complex numbers are not supported: {_go_quote(text)}")
        try:
            return _parse_go_number(text)
        except ValueError:
            self.error(f"illegal number syntax: {_go_quote(text)}")
            raise AssertionError from None


def _parse_go_number(text: str) -> int | float:
    sign, body = ("-" if text[0] == "-" else ""), text.lstrip("+-")
    if body[:2] not in ("0x", "0X") and any(c in body for c in ".eE"):
        return float(text)
    if len(body) > 1 and body[0] == "0" and body[1] in "01234567_":
        return int(sign + "0o" + body[1:], 0)  # Go's legacy octal: 017 == 15
    return int(text, 0)


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", "'": "'", '"': '"'}


def _unquote(text: str, tok: _Tok, parser: _Parser) -> str:
    """Go's strconv.Unquote for "..." and `...` literals."""
    if text[0] == "`":
        return text[1:-1].replace("\r", "")
    body, out, i = text[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1 : i + 2]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
            continue
        size = {"x": 2, "u": 4, "U": 8}.get(e)
        try:
            if size:
                out.append(chr(int(body[i + 2 : i + 2 + size], 16)))
                i += 2 + size
                continue
            if e in "01234567" and e and len(body[i + 1 : i + 4]) == 3:
                out.append(chr(int(body[i + 1 : i + 4], 8)))
                i += 4
                continue
        except ValueError:
            pass
        parser.error("invalid syntax", tok)
    return "".join(out)


# ---------------------------------------------------------------------------
# Values: Go's view of Python values, and fmt's way of printing them.


def _go_type(v: Any) -> str:
    if v is None or v is NO_VALUE:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, Mapping):
        return getattr(v, "go_struct", "map[string]interface {}")
    if isinstance(v, (list, tuple)):
        return "[]interface {}"
    return type(v).__name__


def _sorted_items(m: Mapping[Any, Any]) -> list[tuple[Any, Any]]:
    try:
        return sorted(m.items())
    except TypeError:
        return sorted(m.items(), key=lambda kv: str(kv[0]))


def _is_struct(v: Any) -> bool:
    return hasattr(v, "__dataclass_fields__")


def _go_str(v: Any) -> str:
    """fmt.Sprint of one value (%v)."""
    if isinstance(v, str):
        return str.__str__(v)
    if v is None:
        return "<nil>"
    if v is NO_VALUE:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return int.__repr__(v)
    if isinstance(v, float):
        return _format_float(v, "g", -1)
    if isinstance(v, Mapping):
        return "map[" + " ".join(f"{_go_str(k)}:{_go_str(x)}" for k, x in _sorted_items(v)) + "]"
    if isinstance(v, (list, tuple, set, frozenset, bytes, bytearray)):
        return "[" + " ".join(_go_str(x) for x in _seq(v)) + "]"
    if _is_time(v):
        return _go_time_string(v)
    if _is_struct(v):
        return "{" + " ".join(_go_str(getattr(v, f)) for f in v.__dataclass_fields__) + "}"
    return str(v)


def _is_time(v: Any) -> bool:
    return hasattr(v, "utcoffset") and hasattr(v, "hour") and hasattr(v, "year")


def _go_time_string(t: Any) -> str:
    """time.Time.String(): 2006-01-02 15:04:05.999999999 -0700 MST."""
    frac = f".{t.microsecond:06d}".rstrip("0") if t.microsecond else ""
    offset = t.utcoffset()
    if offset is None:
        return str(t.strftime("%Y-%m-%d %H:%M:%S")) + frac
    zone = t.strftime("%z")
    name = "UTC" if not offset else (t.tzname() or zone)
    if name.startswith("UTC") and offset:
        name = zone
    return f"{t.strftime('%Y-%m-%d %H:%M:%S')}{frac} {zone} {name}"


def _go_time_json(t: Any) -> str:
    """time.Time.MarshalJSON: RFC 3339 with the fraction's trailing zeros dropped."""
    frac = f".{t.microsecond:06d}".rstrip("0") if t.microsecond else ""
    zone = t.strftime("%z")
    zone = "Z" if zone in ("+0000", "") else zone[:3] + ":" + zone[3:]
    return str(t.strftime("%Y-%m-%dT%H:%M:%S")) + frac + zone


def _seq(v: Any) -> list[Any]:
    if isinstance(v, (set, frozenset)):
        try:
            return sorted(v)
        except TypeError:
            return list(v)
    return list(v)


def _truth(v: Any) -> bool:
    """Go's template truth: false, 0, nil, no value and empty things are false."""
    if v is None or v is NO_VALUE:
        return False
    if isinstance(v, (bool, int, float, str, Mapping, list, tuple, set, frozenset)):
        return bool(v)
    return True


def _shortest_digits(f: float) -> tuple[str, int]:
    """The shortest round-trip decimal digits of |f| and the decimal point position."""
    text = repr(abs(f))
    mant, _, exp = text.partition("e")
    whole, _, frac = mant.partition(".")
    digits = (whole + frac).lstrip("0")
    dp = len(whole) + (int(exp) if exp else 0)
    if not digits:
        return "0", 1
    dp -= len(whole + frac) - len((whole + frac).lstrip("0"))
    digits = digits.rstrip("0") or "0"
    return digits, dp


def _format_float(f: float, verb: str, prec: int) -> str:
    """strconv.FormatFloat(f, verb, prec, 64) for verbs e, f, g (and upper case)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if prec >= 0:
        out = f"%.{prec}{verb}" % f
    else:
        out = _format_shortest(f, verb.lower())
        if verb.isupper():
            out = out.upper()
    return out


def _format_shortest(f: float, verb: str) -> str:
    digits, dp = _shortest_digits(f)
    sign = "-" if f < 0 or (f == 0 and repr(f)[0] == "-") else ""
    exp = dp - 1
    if verb == "g":
        # Go's %v: exponent form below 1e-4 and from 1e+06 (shortest precision counts as 6)
        verb = "e" if exp < -4 or exp >= 6 else "f"
    if verb == "e":
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return sign + _fixed(digits, dp, max(len(digits) - dp, 0))


def _fixed(digits: str, dp: int, decimals: int) -> str:
    if dp <= 0:
        whole, frac = "0", "0" * -dp + digits
    elif dp >= len(digits):
        whole, frac = digits + "0" * (dp - len(digits)), ""
    else:
        whole, frac = digits[:dp], digits[dp:]
    frac = (frac + "0" * decimals)[:decimals]
    return whole + ("." + frac if frac else "")


_QUOTE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                  "\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def _go_quote(s: str, ascii_only: bool = False) -> str:
    """strconv.Quote (QuoteToASCII with ascii_only)."""
    out = ['"']
    for c in s:
        o = ord(c)
        if c in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[c])
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif c.isprintable() and not (ascii_only and o > 0x7F):
            out.append(c)
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def _go_quote_rune(c: str) -> str:
    q = _go_quote(c)
    return "'" + q[1:-1].replace('\\"', '"').replace("'", "\\'") + "'"


# ---------------------------------------------------------------------------
# printf: Go's fmt verbs mapped onto Python values.


class _Spec:
    __slots__ = ("flags", "prec", "width")

    def __init__(self, flags: str, width: int | None, prec: int | None) -> None:
        self.flags = flags
        self.width = width
        self.prec = prec

    def pad(self, s: str, numeric: bool = False) -> str:
        if self.width is None or len(s) >= self.width:
            return s
        fill = self.width - len(s)
        if "-" in self.flags:
            return s + " " * fill
        if "0" in self.flags and (numeric or not s[:1].isspace()):
            sign = s[0] if numeric and s[:1] in "+- " else ""
            return sign + "0" * fill + s[len(sign):]
        return " " * fill + s


def _sprintf(fmt: str, args: list[Any]) -> str:
    out: list[str] = []
    n, i, argi = len(fmt), 0, 0
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        i = j + 1
        flags = ""
        while i < n and fmt[i] in "+-# 0":
            flags += fmt[i]
            i += 1
        width, i, argi = _fmt_number(fmt, i, args, argi, out)
        if width is not None and width < 0:
            flags, width = flags + "-", -width
        prec = None
        if i < n and fmt[i] == ".":
            prec, i, argi = _fmt_number(fmt, i + 1, args, argi, out)
            prec = 0 if prec is None or prec < 0 else prec
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
        elif argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
        else:
            out.append(_fmt_value(args[argi], verb, _Spec(flags, width, prec)))
            argi += 1
    if argi < len(args):
        extra = ", ".join(f"{_go_type(a)}={_go_str(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _fmt_number(fmt: str, i: int, args: list[Any], argi: int,
                out: list[str]) -> tuple[int | None, int, int]:
    if i < len(fmt) and fmt[i] == "*":
        if argi < len(args) and type(args[argi]) is int:
            return args[argi], i + 1, argi + 1
        out.append("%!(BADWIDTH)")
        return None, i + 1, argi + 1
    j = i
    while j < len(fmt) and fmt[j].isdigit():
        j += 1
    return (int(fmt[i:j]) if j > i else None), j, argi


def _bad_verb(v: Any, verb: str) -> str:
    if v is None or v is NO_VALUE:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({_go_type(v)}={_go_str(v)})"


def _fmt_value(v: Any, verb: str, spec: _Spec) -> str:
    if verb == "T":
        return spec.pad(_go_type(v))
    if v is None or v is NO_VALUE:
        return spec.pad("<nil>") if verb == "v" else _bad_verb(v, verb)
    if isinstance(v, bool):
        if verb in "vt":
            return spec.pad("true" if v else "false")
        return _bad_verb(v, verb)
    if isinstance(v, int):
        return _fmt_int(int(v), verb, spec)
    if isinstance(v, float):
        return _fmt_float(v, verb, spec)
    if isinstance(v, str):
        return _fmt_str(str.__str__(v), verb, spec)
    if isinstance(v, Mapping):
        items = (f"{_fmt_value(k, verb, spec)}:{_fmt_value(x, verb, spec)}"
                 for k, x in _sorted_items(v))
        return "map[" + " ".join(items) + "]"
    if isinstance(v, (list, tuple, set, frozenset)):
        return "[" + " ".join(_fmt_value(x, verb, spec) for x in _seq(v)) + "]"
    if verb in "vs":
        return spec.pad(_go_str(v))
    return _bad_verb(v, verb)


def _sign(neg: bool, flags: str) -> str:
    if neg:
        return "-"
    return "+" if "+" in flags else (" " if " " in flags else "")


def _fmt_int(v: int, verb: str, spec: _Spec) -> str:
    bases = {"d": (10, ""), "v": (10, ""), "b": (2, "0b"), "o": (8, "0"), "O": (8, "0o"),
             "x": (16, "0x"), "X": (16, "0X")}
    if verb == "c":
        return spec.pad(chr(v))
    if verb == "q":
        return spec.pad(_go_quote_rune(chr(v)))
    if verb == "U":
        return spec.pad(f"U+{v:04X}")
    if verb not in bases:
        return _bad_verb(v, verb)
    base, prefix = bases[verb]
    digits = {10: "d", 2: "b", 8: "o", 16: "x"}[base]
    body = format(abs(v), digits)
    if verb == "X":
        body = body.upper()
    if spec.prec is not None:
        body = body.zfill(spec.prec) if spec.prec else ("" if v == 0 else body)
    if verb == "O" or ("#" in spec.flags and base != 10):
        body = prefix + body
    return spec.pad(_sign(v < 0, spec.flags) + body, numeric=spec.prec is None)


def _fmt_float(v: float, verb: str, spec: _Spec) -> str:
    if verb not in "veEfFgG":
        return _bad_verb(v, verb)
    go_verb = {"v": "g", "F": "f"}.get(verb, verb)
    prec = spec.prec
    if prec is None:
        prec = 6 if go_verb in "eEf" else -1
    neg = v < 0 or (v == 0 and repr(v)[0] == "-")
    body = _format_float(abs(v), go_verb, prec)
    if body == "NaN":
        return _Spec(spec.flags.replace("0", ""), spec.width, None).pad(
            ("+" if "+" in spec.flags else " " if " " in spec.flags else "") + "NaN")
    if body == "+Inf":
        return _Spec(spec.flags.replace("0", ""), spec.width, None).pad(
            _sign(neg, spec.flags) + "Inf")
    return spec.pad(_sign(neg, spec.flags) + body, numeric=True)


def _fmt_str(s: str, verb: str, spec: _Spec) -> str:
    if spec.prec is not None:
        s = s[: spec.prec]
    if verb == "v" and "#" in spec.flags:
        return spec.pad(_go_quote(s))
    if verb in "vs":
        return spec.pad(s)
    if verb == "q":
        if "#" in spec.flags and "`" not in s and all(c.isprintable() or c == "\t" for c in s):
            return spec.pad("`" + s + "`")
        return spec.pad(_go_quote(s, ascii_only="+" in spec.flags))
    if verb in "xX":
        prefix = ("0" + verb) if "#" in spec.flags else ""
        hexes = [format(b, "02" + verb) for b in s.encode()]
        if " " in spec.flags:
            return spec.pad(" ".join(prefix + h for h in hexes))
        return spec.pad(prefix + "".join(hexes) if hexes else "")
    return _bad_verb(s, verb)


# ---------------------------------------------------------------------------
# JSON, as Go's encoding/json with SetEscapeHTML(false) writes it.


def _to_json(v: Any) -> str:
    from json.encoder import encode_basestring  # lazy: json is not needed on every run

    def enc(x: Any) -> str:
        if isinstance(x, str):
            return encode_basestring(x).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        if x is None or x is NO_VALUE:
            return "null"
        if isinstance(x, bool):
            return "true" if x else "false"
        if isinstance(x, int):
            return int.__repr__(x)
        if isinstance(x, float):
            return _json_float(x)
        if isinstance(x, Mapping):
            return "{" + ",".join(f"{enc(_go_str(k))}:{enc(val)}" for k, val in x.items()) + "}"
        if isinstance(x, (list, tuple, set, frozenset)):
            return "[" + ",".join(enc(i) for i in _seq(x)) + "]"
        if isinstance(x, (bytes, bytearray)):
            import base64

            return enc(base64.b64encode(x).decode())
        if _is_time(x):
            return enc(_go_time_json(x))
        if _is_struct(x):
            return enc({f: getattr(x, f) for f in x.__dataclass_fields__})
        if hasattr(x, "_asdict"):
            return enc(x._asdict())
        if hasattr(x, "__dict__"):
            return enc({k: val for k, val in vars(x).items() if not k.startswith("_")})
        return enc(str(x))

    return enc(v)


def _json_float(f: float) -> str:
    if math.isnan(f) or math.isinf(f):
        raise ValueError(f"json: unsupported value: {_format_float(f, 'g', -1)}")
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        out = _format_float(f, "e", -1)
        mant, _, exp = out.partition("e")
        return f"{mant}e{exp[0]}{exp[1:].lstrip('0') or '0'}"
    return _format_float(f, "f", -1)


# ---------------------------------------------------------------------------
# Functions. A builtin is (callable, params) where params lists Go parameter
# kinds, checked before the call; "..." makes the last kind variadic.


def _check_arg(kind: str, value: Any) -> Any:
    if kind == "any":
        return None if value is NO_VALUE else value
    if value is NO_VALUE or value is None:
        raise _ExecError(f"invalid value; expected {kind}")
    if kind == "string":
        ok = isinstance(value, str)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:  # "[]string": any list; join prints non-strings the Go way
        ok = isinstance(value, (list, tuple))
    if not ok:
        raise _ExecError(f"wrong type for value; expected {kind}; got {_go_type(value)}")
    return value


def _fn_len(x: Any) -> int:
    if x is None or x is NO_VALUE:
        raise ValueError("len of nil pointer")
    if isinstance(x, str):
        return len(x.encode())
    try:
        return len(x)
    except TypeError:
        raise TypeError(f"len of type {_go_type(x)}") from None


def _fn_index(item: Any, *indexes: Any) -> Any:
    if item is None or item is NO_VALUE:
        raise ValueError("index of untyped nil")
    for ix in indexes:
        item = _index_one(item, ix)
    return item


def _index_one(item: Any, ix: Any) -> Any:
    if isinstance(item, Mapping):
        if ix in item:
            return item[ix]
        # Go gives the element type's zero value; a map of strings gives "".
        values = item.values()
        return "" if all(isinstance(x, str) for x in values) else NO_VALUE
    if isinstance(item, (str, list, tuple)):
        if not isinstance(ix, int) or isinstance(ix, bool):
            raise TypeError(f"cannot index slice/array with type {_go_type(ix)}")
        seq = item.encode() if isinstance(item, str) else item
        if not 0 <= ix < len(seq):
            raise ValueError(f"index out of range: {ix}")
        return seq[ix]
    if item is None or item is NO_VALUE:
        raise ValueError("index of untyped nil")
    raise TypeError(f"can't index item of type {_go_type(item)}")


def _fn_slice(item: Any, *indexes: Any) -> Any:
    if not isinstance(item, (str, list, tuple)):
        raise TypeError(f"can't slice item of type {_go_type(item)}")
    if len(indexes) > 3 or (len(indexes) == 3 and isinstance(item, str)):
        raise ValueError(f"too many slice indexes: {len(indexes)}")
    ix = list(indexes)
    for i in ix:
        if not isinstance(i, int) or isinstance(i, bool):
            raise TypeError(f"cannot index slice/array with type {_go_type(i)}")
    cap = len(item)
    if any(i < 0 or i > cap for i in ix):
        bad = next(i for i in ix if i < 0 or i > cap)
        raise ValueError(f"index out of range: {bad}")
    if len(ix) >= 2 and ix[0] > ix[1]:
        raise ValueError(f"invalid slice index: {ix[0]} > {ix[1]}")
    start = ix[0] if ix else 0
    end = ix[1] if len(ix) > 1 else cap
    return item[start:end]


def _fn_print(*args: Any) -> str:
    out = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(_go_str(a))
    return "".join(out)


def _fn_println(*args: Any) -> str:
    return " ".join(_go_str(a) for a in args) + "\n"


def _basic_kind(v: Any) -> str:
    if v is None or v is NO_VALUE:
        return "nil"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    return "other"


def _fn_eq(arg1: Any, *args: Any) -> bool:
    if not args:
        raise ValueError("missing argument for comparison")
    k1 = _basic_kind(arg1)
    if isinstance(arg1, (list, dict, set)):
        raise TypeError(f"uncomparable type {_go_type(arg1)}: {_go_str(arg1)}")
    for arg in args:
        k2 = _basic_kind(arg)
        if k1 == "nil" or k2 == "nil":
            if k1 == k2:
                return True
            continue
        if k1 != k2:
            raise TypeError("incompatible types for comparison")
        if arg1 == arg:
            return True
    return False


def _fn_ne(a: Any, b: Any) -> bool:
    return not _fn_eq(a, b)


def _fn_lt(a: Any, b: Any) -> bool:
    ka, kb = _basic_kind(a), _basic_kind(b)
    if ka in ("nil", "bool", "other") or kb in ("nil", "bool", "other"):
        raise TypeError("invalid type for comparison")
    if ka != kb:
        raise TypeError("incompatible types for comparison")
    return bool(a < b)


def _fn_le(a: Any, b: Any) -> bool:
    return _fn_lt(a, b) or _fn_eq(a, b)


def _fn_gt(a: Any, b: Any) -> bool:
    return not _fn_le(a, b)


def _fn_ge(a: Any, b: Any) -> bool:
    return not _fn_lt(a, b)


def _fn_call(fn: Any, *args: Any) -> Any:
    if not callable(fn):
        raise TypeError(f"non-function of type {_go_type(fn)}")
    return fn(*args)


def _eval_args_str(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return _fn_print(*args)


def _fn_html(*args: Any) -> str:
    s = _eval_args_str(args)
    table = {"&": "&amp;", "'": "&#39;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "\0": "\ufffd"}
    return "".join(table.get(c, c) for c in s)


def _fn_js(*args: Any) -> str:
    s = _eval_args_str(args)
    table = {"\\": "\\\\", "'": "\\'", '"': "\\\"", "<": "\\u003C", ">": "\\u003E",
             "&": "\\u0026", "=": "\\u003D", "\n": "\\u000A", "\r": "\\u000D", "\t": "\\u0009"}
    return "".join(table.get(c) or (f"\\u{ord(c):04X}" if not c.isprintable() else c) for c in s)


def _fn_urlquery(*args: Any) -> str:
    s = _eval_args_str(args)
    keep = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~"
    out = []
    for b in s.encode():
        c = chr(b)
        out.append(c if c in keep else "+" if c == " " else f"%{b:02X}")
    return "".join(out)


def _fn_json(v: Any) -> str:
    try:
        return _to_json(v)
    except ValueError:
        return ""  # docker ignores the encoder's error and prints nothing


def _fn_join(items: Any, sep: str) -> str:
    return sep.join(x if isinstance(x, str) else _go_str(x) for x in items)


def _fn_split(s: str, sep: str) -> list[str]:
    return list(s) if sep == "" else s.split(sep)


def _is_title_separator(c: str) -> bool:
    if c.isascii():
        return not (c.isalnum() or c == "_")
    if c.isalpha() or c.isdigit():
        return False
    return c.isspace()


def _fn_title(s: str) -> str:
    out, prev = [], " "
    for c in s:
        if _is_title_separator(prev):
            t = c.title()
            c_out = t if len(t) == 1 else c
        else:
            c_out = c
        out.append(c_out)
        prev = c
    return "".join(out)


def _fn_pad(s: str, prefix: int, suffix: int) -> str:
    return s and " " * prefix + s + " " * suffix


def _fn_truncate(s: str, length: int) -> str:
    if length < 0:
        raise ValueError(f"runtime error: slice bounds out of range [:{length}]")
    return s[:length]


def _identity(v: Any, *_: Any) -> Any:
    return v


_A = ("any",)
_AA = ("any", "any")

# name -> (function, fixed parameter kinds, kind of the variadic rest or None),
# which is Go's signature for each: the executor checks arity and kinds first.
_BUILTINS: dict[str, tuple[Callable[..., Any], tuple[str, ...], str | None]] = {
    "and": (_identity, _A, "any"),  # short-circuits: evaluated by the executor
    "or": (_identity, _A, "any"),
    "not": (lambda x: not _truth(x), _A, None),
    "len": (_fn_len, _A, None),
    "index": (_fn_index, _A, "any"),
    "slice": (_fn_slice, _A, "any"),
    "print": (_fn_print, (), "any"),
    "printf": (lambda f, *a: _sprintf(f, list(a)), ("string",), "any"),
    "println": (_fn_println, (), "any"),
    "eq": (_fn_eq, _A, "any"),
    "ne": (_fn_ne, _AA, None),
    "lt": (_fn_lt, _AA, None),
    "le": (_fn_le, _AA, None),
    "gt": (_fn_gt, _AA, None),
    "ge": (_fn_ge, _AA, None),
    "call": (_fn_call, _A, "any"),
    "html": (_fn_html, (), "any"),
    "js": (_fn_js, (), "any"),
    "urlquery": (_fn_urlquery, (), "any"),
    # docker's templates.basicFunctions
    "json": (_fn_json, _A, None),
    "split": (_fn_split, ("string", "string"), None),
    "join": (_fn_join, ("[]string", "string"), None),
    "title": (_fn_title, ("string",), None),
    "lower": (lambda s: s.lower(), ("string",), None),
    "upper": (lambda s: s.upper(), ("string",), None),
    "pad": (_fn_pad, ("string", "int", "int"), None),
    "truncate": (_fn_truncate, ("string", "int"), None),
}

HEADER_FUNCS: dict[str, Callable[..., Any]] = {
    name: _identity for name in ("json", "split", "join", "title", "lower", "upper", "truncate")
}
"""docker's templates.HeaderFunctions: a table header keeps each column title intact."""


# ---------------------------------------------------------------------------
# Execution.


class _State:
    def __init__(self, tmpl: Template, out: list[str], funcs: Mapping[str, Any]) -> None:
        self.tmpl = tmpl
        self.out = out
        self.funcs = funcs
        self.vars: list[list[Any]] = []  # [name, value] pairs, innermost last
        self.node: _Node | None = None
        self.depth = 0

    def error(self, msg: str) -> NoReturn:
        node, src = self.node, self.tmpl.source
        pos = node.pos if node is not None else 0
        line = src.count("\n", 0, pos) + 1
        col = pos - (src.rfind("\n", 0, pos) + 1)
        context = str(node) if node is not None else ""
        if len(context) > 20:
            context = context[:20] + "..."
        raise _ExecError(f'template: :{line}:{col}: executing "" at <{context}>: {msg}')

    # walking ----------------------------------------------------------------
    def walk_list(self, dot: Any, nodes: list[_Node]) -> None:
        for node in nodes:
            self.walk(dot, node)

    def walk(self, dot: Any, node: _Node) -> None:
        if isinstance(node, _Text):
            self.out.append(node.text)
        elif isinstance(node, _Action):
            self.node = node
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.out.append(_go_str(value))
        elif isinstance(node, _Control):
            mark = len(self.vars)  # variables declared inside end with the block
            try:
                if node.kind == "range":
                    self.walk_range(dot, node)
                else:
                    self.walk_if_or_with(dot, node)
            finally:
                del self.vars[mark:]
        elif isinstance(node, _Invoke):
            self.walk_template(dot, node)
        elif isinstance(node, _Marker):
            raise _Break() if node.word == "break" else _Continue()

    def walk_if_or_with(self, dot: Any, node: _Control) -> None:
        value = self.eval_pipeline(dot, node.pipe)
        if _truth(value):
            self.walk_list(value if node.kind == "with" else dot, node.body)
        elif node.else_body is not None:
            self.walk_list(dot, node.else_body)

    def walk_range(self, dot: Any, node: _Control) -> None:
        self.node = node.pipe
        value = self.eval_pipeline(dot, node.pipe, declare=False)
        decl = node.pipe.decl
        mark = len(self.vars)
        ran = False
        for key, elem in self.range_pairs(value):
            ran = True
            if len(decl) == 2:
                self.vars.append([decl[0], key])
            if decl:
                self.vars.append([decl[-1], elem])
            try:
                self.walk_list(elem, node.body)
            except _Continue:
                pass
            except _Break:
                break
            finally:
                del self.vars[mark:]
        if not ran and node.else_body is not None:
            self.walk_list(dot, node.else_body)

    def range_pairs(self, value: Any) -> Iterable[tuple[Any, Any]]:
        if value is None or value is NO_VALUE:
            return ()
        if isinstance(value, Mapping):
            return _sorted_items(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return ((i, i) for i in range(value))  # Go 1.22's range over an int
        if isinstance(value, (set, frozenset)):
            return enumerate(_seq(value))
        if not isinstance(value, (str, bytes, bool, float)):
            try:
                return enumerate(value)
            except TypeError:
                pass
        self.error(f"range can't iterate over {_go_str(value)}")

    def walk_template(self, dot: Any, node: _Invoke) -> None:
        self.node = node
        body = self.tmpl.defines.get(node.name)
        if body is None:
            self.error(f"no such template {_go_quote(node.name)}")
        value = self.eval_pipeline(dot, node.pipe) if node.pipe else NO_VALUE
        if self.depth >= 100:
            self.error("exceeded maximum template depth (100)")
        saved, self.vars = self.vars, [["$", value]]
        self.depth += 1
        try:
            self.walk_list(value, body)
        finally:
            self.vars = saved
            self.depth -= 1

    # evaluation -----------------------------------------------------------
    def eval_pipeline(self, dot: Any, pipe: _Pipe, declare: bool = True) -> Any:
        value = _MISSING
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)  # each result is the next's last arg
        for name in pipe.decl if declare else ():
            if pipe.is_assign:
                self.set_var(name, value)
            else:
                self.vars.append([name, value])
        return value

    def eval_command(self, dot: Any, cmd: _Command, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, _Field):
            self.node = first
            return self.eval_field_chain(dot, dot, first, first.idents, cmd.args, final)
        if isinstance(first, _Chain):
            self.node = first
            if isinstance(first.node, _Literal) and first.node.is_nil:
                self.error(f"indirection through explicit nil in {first}")
            receiver = self.eval_arg(dot, first.node)
            return self.eval_field_chain(dot, receiver, first, first.fields, cmd.args, final)
        if isinstance(first, _Identifier):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, _Variable):
            return self.eval_variable(dot, first, cmd.args, final)
        self.node = first
        self.not_a_function(cmd.args, final)
        if isinstance(first, _Pipe):
            return self.eval_pipeline(dot, first)
        assert isinstance(first, _Literal)
        if first.is_nil:
            self.error("nil is not a command")
        return dot if first.is_dot else first.value

    def not_a_function(self, args: list[_Node], final: Any) -> None:
        if len(args) > 1 or final is not _MISSING:
            self.error(f"can't give argument to non-function {args[0]}")

    def eval_arg(self, dot: Any, node: _Node) -> Any:
        if isinstance(node, _Literal):
            if node.is_nil:
                return None
            return dot if node.is_dot else node.value
        if isinstance(node, _Pipe):
            return self.eval_pipeline(dot, node)
        if isinstance(node, _Identifier):
            return self.eval_function(dot, node, node, [node], _MISSING)
        cmd = _Command(node.pos)
        cmd.args = [node]
        return self.eval_command(dot, cmd, _MISSING)

    def eval_variable(self, dot: Any, node: _Variable, args: list[_Node], final: Any) -> Any:
        self.node = node
        value = self.var_ref(node.idents[0])[1]
        if len(node.idents) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, node, node.idents[1:], args, final)

    def var_ref(self, name: str) -> list[Any]:
        for var in reversed(self.vars):
            if var[0] == name:
                return var  # type: ignore[no-any-return]
        self.error(f"undefined variable: {name}")

    def set_var(self, name: str, value: Any) -> None:
        self.var_ref(name)[1] = value

    def eval_field_chain(self, dot: Any, receiver: Any, node: _Node, idents: list[str],
                         args: list[_Node], final: Any) -> Any:
        for name in idents[:-1]:
            receiver = self.eval_field(dot, name, node, [node], _MISSING, receiver)
        return self.eval_field(dot, idents[-1], node, args, final, receiver)

    def eval_field(self, dot: Any, name: str, node: _Node, args: list[_Node], final: Any,
                   receiver: Any) -> Any:
        if receiver is NO_VALUE:
            return NO_VALUE  # Go: a field of "no value" is "no value"
        if receiver is None:
            self.error(f"nil pointer evaluating interface {{}}.{name}")
        has_args = len(args) > 1 or final is not _MISSING
        try:
            value = _lookup(receiver, name)
        except Exception as e:  # noqa: BLE001 - a failing property is the template's error
            self.error(f"error calling {name}: {e}")
        is_map = isinstance(receiver, Mapping)
        if value is _MISSING:
            if not is_map or hasattr(receiver, "go_struct"):
                self.error(f"can't evaluate field {name} in type {_go_type(receiver)}")
            value = NO_VALUE
        elif callable(value) and not isinstance(value, type):
            return self.call(dot, name, value, node, args[1:], final, None)
        if has_args:
            if is_map:
                self.error(f"{name} is not a method but has arguments")
            self.error(f"{name} has arguments but cannot be invoked as function")
        return value

    def eval_function(self, dot: Any, ident: _Identifier, node: _Node, args: list[_Node],
                      final: Any) -> Any:
        self.node = ident
        name = ident.name
        fn = self.funcs.get(name) or self.tmpl.funcs.get(name)
        if fn is not None:
            return self.call(dot, name, fn, node, args[1:], final, None)
        if name in ("and", "or"):
            return self.and_or(dot, name, args[1:], final)
        return self.call(dot, name, _BUILTINS[name][0], node, args[1:], final, _BUILTINS[name])

    def and_or(self, dot: Any, name: str, args: list[_Node], final: Any) -> Any:
        if not args and final is _MISSING:
            self.error(f"wrong number of args for {name}: want at least 1 got 0")
        value: Any = NO_VALUE
        for arg in args:
            value = self.eval_arg(dot, arg)
            if _truth(value) == (name == "or"):
                return value
        return value if final is _MISSING else final

    def call(self, dot: Any, name: str, fn: Callable[..., Any], node: _Node,
             args: list[_Node], final: Any, spec: tuple[Any, ...] | None) -> Any:
        values = [self.eval_arg(dot, a) for a in args]
        if final is not _MISSING:
            values.append(final)
        self.node = node
        if spec is None:  # a method or a caller's function: no Go signature to check
            values = [None if v is NO_VALUE else v for v in values]
        else:
            values = self.check_args(name, spec[1], spec[2], values)
        try:
            return fn(*values)
        except (_ExecError, _Break, _Continue):
            raise
        except Exception as e:  # noqa: BLE001 - a function's failure is the template's error
            self.error(f"error calling {name}: {e}")

    def check_args(self, name: str, fixed: tuple[str, ...], rest: str | None,
                   values: list[Any]) -> list[Any]:
        got = len(values)
        if rest is None and got != len(fixed):
            self.error(f"wrong number of args for {name}: want {len(fixed)} got {got}")
        if rest is not None and got < len(fixed):
            self.error(f"wrong number of args for {name}: want at least {len(fixed)} got {got}")
        kinds = list(fixed) + [rest or "any"] * (got - len(fixed))
        try:
            return [_check_arg(kind, v) for kind, v in zip(kinds, values)]
        except _ExecError as e:
            self.error(str(e))


def _lookup(receiver: Any, name: str) -> Any:
    """`.name` on a Python value: mapping key first, then a public attribute."""
    if isinstance(receiver, Mapping):
        if name in receiver:
            return receiver[name]
        if type(receiver) is dict or hasattr(dict, name):
            return _MISSING
    elif isinstance(receiver, (str, int, float, list, tuple, bytes, set, frozenset)):
        return _MISSING
    if name.startswith("_"):
        return _MISSING
    return getattr(receiver, name, _MISSING)


# ---------------------------------------------------------------------------
# Public surface.


class Template:
    """A parsed template. Parsing happens once; ``execute`` runs it on data."""

    __slots__ = ("defines", "funcs", "root", "simple", "source")

    def __init__(self, source: str, funcs: Mapping[str, Callable[..., Any]] | None = None):
        self.source = source
        self.funcs: Mapping[str, Callable[..., Any]] = dict(funcs or {})
        try:
            parser = _Parser(source, self.funcs)
            self.root = parser.parse()
        except _ParseError as e:
            raise InvalidArgument(f"template parsing error: {e}") from None
        self.defines = parser.defines
        self.simple = _simple_parts(self.root)

    def execute(self, data: Any, funcs: Mapping[str, Callable[..., Any]] | None = None) -> str:
        """Render the template with ``.`` and ``$`` set to ``data``.

        ``funcs`` overrides functions by name for this run, as Go's ``Funcs`` does
        after parsing (docker renders table headers that way).
        """
        if self.simple is not None and not funcs and isinstance(data, dict):
            fast = _fast(self.simple, data)
            if fast is not None:
                return fast
        out: list[str] = []
        self.execute_into(out, data, funcs)
        return "".join(out)

    def execute_into(self, out: list[str], data: Any,
                     funcs: Mapping[str, Callable[..., Any]] | None = None) -> None:
        """Like ``execute`` but appends to ``out``; on error, what was written stays."""
        state = _State(self, out, funcs or {})
        if data is None:
            data = NO_VALUE  # Go: executing on nil data gives "<no value>", not errors
        state.vars.append(["$", data])
        try:
            state.walk_list(data, self.root)
        except _ExecError as e:
            raise InvalidArgument(f"template parsing error: {e}") from None
        except RecursionError:
            raise InvalidArgument("template parsing error: template nests too deeply") from None


def _simple_parts(root: list[_Node]) -> list[tuple[bool, str]] | None:
    """(is_field, text) parts when the template is only text and `{{.Field}}`s:
    the shape of every default table format, rendered without the evaluator."""
    parts = []
    for node in root:
        if isinstance(node, _Text):
            parts.append((False, node.text))
            continue
        if not isinstance(node, _Action) or node.pipe.decl or len(node.pipe.cmds) != 1:
            return None
        args = node.pipe.cmds[0].args
        if len(args) != 1 or type(args[0]) is not _Field or len(args[0].idents) != 1:
            return None
        parts.append((True, args[0].idents[0]))
    return parts


def _fast(parts: list[tuple[bool, str]], data: dict) -> str | None:
    """The simple template on string-valued fields; None sends it the general way."""
    out = []
    for is_field, text in parts:
        if not is_field:
            out.append(text)
            continue
        value = data.get(text)
        if type(value) is not str:
            return None  # Go prints other kinds its own way: let the evaluator do it
        out.append(value)
    return "".join(out)


_CACHE: dict[str, Template] = {}
_CACHE_LIMIT = 256


def compile(template: str) -> Template:
    """Parse ``template`` (cached: the CLI renders one format for many rows)."""
    tmpl = _CACHE.get(template)
    if tmpl is None:
        tmpl = Template(template)
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        _CACHE[template] = tmpl
    return tmpl


def render(template: str, data: Any) -> str:
    """Parse (cached) and execute ``template`` on ``data``."""
    return compile(template).execute(data)
