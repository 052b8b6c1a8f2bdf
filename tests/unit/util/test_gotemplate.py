"""kade.util.gotemplate against what docker's --format prints for the same input."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from kade.errors import InvalidArgument
from kade.util import gotemplate
from kade.util.gotemplate import Template, render

INSPECT = {
    "Id": "3f4a9c0e5d1b",
    "Name": "/web",
    "Args": ["-c", "echo hi"],
    "State": {"Status": "running", "Running": True, "Pid": 4242, "ExitCode": 0, "Health": None},
    "Config": {
        "Image": "busybox",
        "Labels": {"b": "2", "a": "1", "com.example.vendor": "ACME"},
        "Env": ["PATH=/usr/bin", "HOME=/root"],
        "Entrypoint": None,
    },
    "HostConfig": {"Dns": [], "Memory": 536870912, "NanoCpus": 500000000},
    "Mounts": [
        {"Type": "volume", "Source": "/var/lib/kade/volumes/data", "Destination": "/data"},
        {"Type": "bind", "Source": "/etc/hosts", "Destination": "/etc/hosts"},
    ],
    "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}}},
}

IMAGE_ROW = {"Repository": "busybox", "Tag": "latest", "ID": "a416a98b71e2", "Size": "4.26MB"}


class ContainerRow:
    """A row object with Go-style methods and properties, like docker's containerContext."""

    def __init__(self) -> None:
        self.ID = "3f4a9c0e5d1b"
        self._labels = {"com.docker.compose.project": "shop"}

    @property
    def Names(self) -> str:  # Go's exported names are capitalised
        return "web"

    def Label(self, name: str) -> str:
        return self._labels.get(name, "")

    def Command(self) -> str:
        return '"sh -c \'sleep 1\'"'


@dataclass
class Port:
    PrivatePort: int
    Type: str = "tcp"
    Extra: list[str] = field(default_factory=list)


# --- docker's everyday formats ------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{.Repository}}:{{.Tag}}", "busybox:latest"),
        ("{{.ID}}\t{{.Size}}", "a416a98b71e2\t4.26MB"),
        ("{{.Missing}}", "<no value>"),
        ("{{.Repository}} {{.Missing.Deeper}}", "busybox <no value>"),
    ],
)
def test_image_row_formats(template: str, expected: str) -> None:
    assert render(template, IMAGE_ROW) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{.State.Status}}", "running"),
        ("{{.State.Running}}", "true"),
        ("{{.State.Pid}}", "4242"),
        ("{{.Name}}", "/web"),
        ("{{join .Args \" \"}}", "-c echo hi"),
        ("{{.Args}}", "[-c echo hi]"),
        ("{{.Config.Labels}}", "map[a:1 b:2 com.example.vendor:ACME]"),
        ('{{index .Config.Labels "a"}}', "1"),
        ('{{index .Config.Labels "com.example.vendor"}}', "ACME"),
        ('{{index .Config.Labels "nope"}}', ""),  # map[string]string zero value
        ("{{range .Mounts}}{{.Source}}{{end}}", "/var/lib/kade/volumes/data/etc/hosts"),
        ("{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}",
         "/var/lib/kade/volumes/data:/data /etc/hosts:/etc/hosts "),
        ('{{if eq .State.Status "running"}}up{{end}}', "up"),
        ('{{if eq .State.Status "exited"}}down{{else}}up{{end}}', "up"),
        ("{{.State.Health}}", "<nil>"),
        ("{{.Config.Foo}}", "<no value>"),  # a missing map key
        ("{{.Config.Entrypoint}}", "<nil>"),
        ("{{.HostConfig.Dns}}", "[]"),
        ("{{.HostConfig.Memory}}", "536870912"),
        ("{{range $net, $conf := .NetworkSettings.Networks}}{{$net}}={{$conf.IPAddress}}{{end}}",
         "bridge=172.17.0.2"),
        ("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "172.17.0.2"),
        ("{{(index .Mounts 1).Source}}", "/etc/hosts"),
        ("{{with .Config}}{{.Image}}{{end}}", "busybox"),
        ("{{len .Mounts}}", "2"),
        ("{{range $i, $e := .Config.Env}}{{if $i}},{{end}}{{$e}}{{end}}",
         "PATH=/usr/bin,HOME=/root"),
        ("{{$.Name}}{{range .Args}}{{$.Name}}{{end}}", "/web/web/web"),
    ],
)
def test_inspect_formats(template: str, expected: str) -> None:
    assert render(template, INSPECT) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{json .Config.Labels}}", '{"b":"2","a":"1","com.example.vendor":"ACME"}'),
        ("{{json .Args}}", '["-c","echo hi"]'),
        ("{{json .State}}",
         '{"Status":"running","Running":true,"Pid":4242,"ExitCode":0,"Health":null}'),
        ("{{json .Missing}}", "null"),
        ("{{json .HostConfig.Dns}}", "[]"),
        ('{{json "<a&b>"}}', '"<a&b>"'),  # docker turns off HTML escaping
        ('{{json "tab\\there"}}', '"tab\\there"'),
        ('{{json "é\\u2028"}}', '"é\\u2028"'),
        ("{{json 1.5}} {{json 1e21}} {{json 1e-7}} {{json 100.0}}", "1.5 1e+21 1e-7 100"),
    ],
)
def test_json(template: str, expected: str) -> None:
    assert render(template, INSPECT) == expected


def test_json_of_objects() -> None:
    assert render("{{json .}}", Port(80)) == '{"PrivatePort":80,"Type":"tcp","Extra":[]}'
    assert render("{{.}}", Port(80, "udp", ["x"])) == "{80 udp [x]}"


def test_methods_properties_and_method_arguments() -> None:
    row = ContainerRow()
    assert render("{{.ID}} {{.Names}}", row) == "3f4a9c0e5d1b web"
    assert render("{{.Command}}", row) == '"sh -c \'sleep 1\'"'
    assert render('{{.Label "com.docker.compose.project"}}', row) == "shop"
    assert render('{{.Label "nope"}}|', row) == "|"
    assert render('{{"com.docker.compose.project" | .Label}}', row) == "shop"


def test_private_attributes_are_not_fields() -> None:
    with pytest.raises(InvalidArgument, match="can't evaluate field _labels in type"):
        render("{{._labels}}", ContainerRow())


def test_a_mapping_that_names_a_go_struct_refuses_unknown_fields() -> None:
    class Row(dict):
        go_struct = "*formatter.ContainerContext"

    row = Row(ID="3f4a9c")
    assert render("{{.ID}}", row) == "3f4a9c"
    with pytest.raises(InvalidArgument, match=r"executing \"\" at <\.Nope>: can't evaluate "
                       r"field Nope in type \*formatter\.ContainerContext"):
        render("{{.Nope}}", row)
    assert render("{{.Nope}}", {"ID": "x"}) == "<no value>"  # a plain map stays a map


def test_callable_dict_values_are_methods() -> None:
    calls: list[int] = []
    row = {"Size": lambda: calls.append(1) or "4MB"}
    assert render("{{.Size}}", row) == "4MB"
    assert render("{{if false}}{{.Size}}{{end}}", row) == ""
    assert calls == [1]  # lazily computed, only when the template asks


# --- Go's printing of values ---------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text", "text"),
        (True, "true"),
        (False, "false"),
        (None, "<nil>"),
        (42, "42"),
        (-7, "-7"),
        (3.0, "3"),
        (2.5, "2.5"),
        (0.1, "0.1"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (1e6, "1e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-0.0, "-0"),
        ([1, "a", None], "[1 a <nil>]"),
        ([], "[]"),
        ({"b": 2, "a": [1, 2]}, "map[a:[1 2] b:2]"),
        ({}, "map[]"),
        ({"k": {"n": True}}, "map[k:map[n:true]]"),
    ],
)
def test_go_value_printing(value: object, expected: str) -> None:
    assert render("{{.V}}", {"V": value}) == expected


# --- syntax ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("a {{- .X -}} b", "a1b"),
        ("a\n  {{- .X}}\n", "a1\n"),
        ("{{.X -}}\n\n  z", "1z"),
        ("{{- 3}}", "3"),
        ("{{-3}}", "-3"),
        ("{{/* a comment */}}x", "x"),
        ("x {{- /* trimmed */ -}} y", "xy"),
        ('{{"quoted \\"s\\"\\n"}}', 'quoted "s"\n'),
        ("{{`raw \\n {{x}}`}}", "raw \\n {{x}}"),
        ("{{'a'}} {{'\\n'}}", "97 10"),
        ("{{0x1F}} {{017}} {{0b101}} {{1_000}} {{1e3}} {{.5}}", "31 15 5 1000 1000 0.5"),
        ("{{true}} {{false}}", "true false"),
        ('{{"\\u00e9\\x41\\101"}}', "éAA"),
        ("{{$x := 1}}{{$x}}{{$x = 2}}{{$x}}", "12"),
        ("{{$x := .X}}{{if $x}}{{$x := 5}}{{$x}}{{end}}{{$x}}", "51"),
        ("{{.X | printf \"%d!\"}}", "1!"),
        ("{{printf \"%d\" .X | printf \"<%s>\"}}", "<1>"),
        ("{{(printf \"%d\" 7)}}", "7"),
        ("{{if .X}}yes{{end}}", "yes"),
        ("{{if .Zero}}yes{{else}}no{{end}}", "no"),
        ("{{if .Nope}}a{{else if .Zero}}b{{else if .X}}c{{else}}d{{end}}", "c"),
        ("{{with .Nope}}a{{else with .X}}{{.}}{{end}}", "1"),
        ("{{with .Nope}}a{{else}}none{{end}}", "none"),
        ("{{with $v := .X}}{{$v}}{{.}}{{end}}", "11"),
        ("{{range .L}}{{.}}{{end}}", "abc"),
        ("{{range $i, $v := .L}}{{$i}}{{$v}}{{end}}", "0a1b2c"),
        ("{{range $v := .L}}{{$v}}{{end}}", "abc"),
        ("{{range .M}}{{.}}{{end}}", "12"),  # map values in key order
        ("{{range $k, $v := .M}}{{$k}}{{$v}}{{end}}", "x1y2"),
        ("{{range .Empty}}x{{else}}empty{{end}}", "empty"),
        ("{{range .Nope}}x{{else}}none{{end}}", "none"),
        ("{{range .L}}{{if eq . \"b\"}}{{continue}}{{end}}{{.}}{{end}}", "ac"),
        ("{{range .L}}{{if eq . \"b\"}}{{break}}{{end}}{{.}}{{end}}", "a"),
        ("{{range 3}}{{.}}{{end}}", "012"),
        ('{{define "T"}}<{{.}}>{{end}}{{template "T" .X}}{{template "T" "s"}}', "<1><s>"),
        ('{{block "B" .L}}{{len .}}{{end}}', "3"),
    ],
)
def test_syntax(template: str, expected: str) -> None:
    data = {"X": 1, "Zero": 0, "L": ["a", "b", "c"], "M": {"y": 2, "x": 1}, "Empty": []}
    assert render(template, data) == expected


# --- functions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{and 1 0 2}} {{and 1 2}} {{or 0 \"\" \"x\"}} {{or 0 \"\"}}", "0 2 x "),
        ("{{not 0}} {{not .L}} {{not .Nope}}", "true false true"),
        ("{{and .Nope .Boom}}", "<no value>"),  # short-circuits before .Boom
        ("{{len .L}} {{len .M}} {{len \"héllo\"}}", "3 2 6"),  # len counts bytes
        ("{{index .L 1}} {{index .M \"x\"}} {{index .Nested 0 1}}", "b 1 2"),
        ("{{slice .L 1}} {{slice .L 0 2}} {{slice \"abcdef\" 1 3}}", "[b c] [a b] bc"),
        ("{{print 1 2 \"a\" \"b\" 3}}", "1 2ab3"),
        ("{{println 1 \"a\"}}", "1 a\n"),
        ("{{eq .X 1}} {{eq .X 2 3 1}} {{eq \"a\" \"a\"}} {{ne 1 2}}", "true true true true"),
        ("{{eq .Nope nil}} {{eq .X nil}}", "true false"),
        ("{{lt 1 2}} {{le 2 2}} {{gt 1 2}} {{ge \"b\" \"a\"}} {{lt 1.5 2.5}}",
         "true true false true true"),
        ("{{html \"<a href='x'>&\"}}", "&lt;a href=&#39;x&#39;&gt;&amp;"),
        ("{{urlquery \"a b&c/d\"}}", "a+b%26c%2Fd"),
        ("{{js \"it's <b>\"}}", "it\\'s \\u003Cb\\u003E"),
        ("{{split \"a,b,c\" \",\"}} {{len (split \"a,b\" \",\")}}", "[a b c] 2"),
        ("{{join (split \"a:b\" \":\") \"-\"}}", "a-b"),
        ("{{title \"hello world-wide o'neil\"}}", "Hello World-Wide O'Neil"),
        ("{{lower \"ABC\"}} {{upper \"abc\"}}", "abc ABC"),
        ("[{{pad \"x\" 1 2}}][{{pad \"\" 1 2}}]", "[ x  ][]"),
        ("{{truncate \"abcdef\" 3}} {{truncate \"ab\" 5}}", "abc ab"),
        ("{{.L | len | printf \"%d items\"}}", "3 items"),
        ("{{\"x\" | printf \"%s-%s\" \"y\"}}", "y-x"),
    ],
)
def test_functions(template: str, expected: str) -> None:
    data = {"X": 1, "L": ["a", "b", "c"], "M": {"y": 2, "x": 1}, "Nested": [[1, 2]]}
    assert render(template, data) == expected


@pytest.mark.parametrize(
    ("fmt", "args", "expected"),
    [
        ("%s|%-10s|%10s|", ["a", "left", "right"], "a|left      |     right|"),
        ("%d %5d %-5d| %05d %+d %x %X %o %b", [42, 42, 42, -42, 5, 255, 255, 8, 5],
         "42    42 42   | -0042 +5 ff FF 10 101"),
        ("%v %v %v %v", [1, "s", True, None], "1 s true <nil>"),
        ("%q %q", ["hi \"there\"\n", ["a", "b"]], '"hi \\"there\\"\\n" ["a" "b"]'),
        ("%.2f %6.2f %e %g %v %f", [3.14159, 3.14159, 1234.5, 1e21, 2.0, 1.5],
         "3.14   3.14 1.234500e+03 1e+21 2 1.500000"),
        ("%08.3f", [-3.14159], "-003.142"),
        ("%t %c %U %x", [False, 65, 65, "hi"], "false A U+0041 6869"),
        ("%.3s|%5.1s|", ["abcdef", "xyz"], "abc|    x|"),
        ("%*d|%-*d|", [4, 7, 4, 7], "   7|7   |"),
        ("%T %T %T %T %T", [1, 1.5, "s", [1], {"a": 1}],
         "int float64 string []interface {} map[string]interface {}"),
        ("%v", [{"b": 1, "a": "x"}], "map[a:x b:1]"),
        ("%d", [[1, 2]], "[1 2]"),
        ("100%%", [], "100%"),
        # Go's complaints, printed in place
        ("%d", ["x"], "%!d(string=x)"),
        ("%s", [5], "%!s(int=5)"),
        ("%d %s", [], "%!d(MISSING) %!s(MISSING)"),
        ("%d", [1, "x"], "1%!(EXTRA string=x)"),
        ("%z", [1], "%!z(int=1)"),
        ("%", [], "%!(NOVERB)"),
    ],
)
def test_printf(fmt: str, args: list[object], expected: str) -> None:
    assert render('{{printf .F ' + " ".join(f"(index .A {i})" for i in range(len(args))) + "}}",
                  {"F": fmt, "A": args}) == expected


def test_printf_literal_arguments() -> None:
    assert render('{{printf "%-12s|%3d|%.1f" "busybox" 7 2.25}}', {}) == "busybox     |  7|2.2"


def test_custom_functions_and_execute_time_overrides() -> None:
    tmpl = Template("{{shout .}} {{upper .}}", funcs={"shout": lambda s: s + "!"})
    assert tmpl.execute("hi") == "hi! HI"
    assert tmpl.execute("hi", funcs={"upper": lambda s: s}) == "hi! hi"
    assert tmpl.execute("x", funcs=gotemplate.HEADER_FUNCS) == "x! x"


def test_execute_into_keeps_partial_output() -> None:
    out: list[str] = []
    with pytest.raises(InvalidArgument):
        Template("a{{.X.Y}}b").execute_into(out, {"X": 1})
    assert "".join(out) == "a"


def test_compile_is_cached() -> None:
    assert gotemplate.compile("{{.Same}}") is gotemplate.compile("{{.Same}}")


def test_variables_do_not_leak_between_range_iterations() -> None:
    out = render("{{range .L}}{{$y := .}}{{$y}}{{end}}", {"L": [1, 2]})
    assert out == "12"


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{.ID }", 'template: :1: unexpected "}" in operand'),
        ("{{.ID}", "template: :1: bad character U+007D '}'"),
        ("{{.ID", "template: :1: unclosed action"),
        ("{{if .X}}", "template: :1: unexpected EOF"),
        ("{{range .X}}{{else}}", "template: :1: unexpected EOF"),
        ("{{end}}", "template: :1: unexpected {{end}}"),
        ("{{else}}", "template: :1: unexpected {{else}}"),
        ("{{foo .X}}", 'template: :1: function "foo" not defined'),
        ("{{$x}}", 'template: :1: undefined variable "$x"'),
        ("{{range $k, $v := .M}}{{end}}{{$k}}", 'template: :1: undefined variable "$k"'),
        ("{{range}}", "template: :1: missing value for range"),
        ("{{if}}", "template: :1: missing value for if"),
        ("{{}}", "template: :1: missing value for command"),
        ('{{"abc}}', "template: :1: unterminated quoted string"),
        ("{{`abc}}", "template: :1: unterminated raw quoted string"),
        ("{{1x}}", 'template: :1: bad number syntax: "1x"'),
        ("{{.A | 1}}", "template: :1: non executable command in pipeline stage 2"),
        ("{{/* x }}", "template: :1: unclosed comment"),
        ("{{.A)}}", "template: :1: unexpected right paren"),
        ("{{(.A}}", "template: :1: unclosed left paren"),
        ("{{break}}", "template: :1: {{break}} outside {{range}}"),
        ("{{end 1}}", 'template: :1: unexpected "1" in end'),
        ("{{range $a, $b, $c := .L}}{{end}}", "template: :1: too many declarations in range"),
        ("line1\nline2 {{.A .}", "template: :2: bad character U+007D '}'"),
        ("{{\"a\".B}}", "template: :1: unexpected . after term"),
    ],
)
def test_parse_errors(template: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        Template(template)
    text = str(err.value)
    assert text.startswith("template parsing error: " + message)
    assert "\n" not in text


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{.Name.Foo}}",
         'template: :1:7: executing "" at <.Name.Foo>: can\'t evaluate field Foo in type string'),
        ("{{.State.Pid.X}}",
         'template: :1:8: executing "" at <.State.Pid.X>: can\'t evaluate field X in type int'),
        ("{{.State.Health.Status}}",
         ('template: :1:8: executing "" at <.State.Health.Status>: '
          "nil pointer evaluating interface {}.Status")),
        ("{{index .Args 5}}",
         ('template: :1:2: executing "" at <index .Args 5>: error calling index: '
          "index out of range: 5")),
        ("{{len 3}}", "error calling len: len of type int"),
        ("{{join .Args}}", "wrong number of args for join: want 2 got 1"),
        ("{{printf}}", "wrong number of args for printf: want at least 1 got 0"),
        ("{{upper 3}}", "wrong type for value; expected string; got int"),
        ("{{upper .Missing}}", "invalid value; expected string"),
        ('{{eq .State.Pid "1"}}', "error calling eq: incompatible types for comparison"),
        ("{{lt true false}}", "error calling lt: invalid type for comparison"),
        ("{{range .Name}}{{end}}", "range can't iterate over /web"),
        ("{{nil}}", "nil is not a command"),
        ("{{3 4}}", "can't give argument to non-function 3"),
        ("{{.Name 1}}", "Name is not a method but has arguments"),
        ('{{template "nope"}}', 'no such template "nope"'),
        ("{{truncate .Name -1}}", "error calling truncate"),
        ("a\nb {{.Name.X}}", 'template: :2:9: executing "" at <.Name.X>'),
    ],
)
def test_execution_errors(template: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        render(template, INSPECT)
    text = str(err.value)
    assert text.startswith("template parsing error: template: :")
    assert message in text
    assert "\n" not in text


def test_field_on_object_without_it() -> None:
    with pytest.raises(InvalidArgument, match="can't evaluate field Nope in type Port"):
        render("{{.Nope}}", Port(80))


def test_failing_method_is_an_execution_error() -> None:
    class Bad:
        def Boom(self) -> str:
            raise RuntimeError("disk on fire")

    with pytest.raises(InvalidArgument, match="error calling Boom: disk on fire"):
        render("{{.Boom}}", Bad())


def test_deep_template_recursion_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match="exceeded maximum template depth"):
        render('{{define "r"}}{{template "r" .}}{{end}}{{template "r" .}}', {})


def test_nil_data_is_no_value() -> None:
    assert render("{{.}}|{{.Foo}}|{{.Foo.Bar}}", None) == "<no value>|<no value>|<no value>"
    assert render('{{define "t"}}{{.}}{{end}}{{template "t"}}', {}) == "<no value>"


def test_times_print_like_go_time() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    utc = datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=UTC)
    plus1 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=1)))
    assert render("{{.}}", utc) == "2024-01-02 03:04:05.12 +0000 UTC"
    assert render("{{json .}}", utc) == '"2024-01-02T03:04:05.12Z"'
    assert render("{{.}}", plus1) == "2024-01-02 03:04:05 +0100 +0100"
    assert render("{{json .}}", plus1) == '"2024-01-02T03:04:05+01:00"'


def test_bytes_print_as_go_byte_slices() -> None:
    assert render("{{.}}", b"hi") == "[104 105]"
    assert render("{{json .}}", b"hi") == '"aGk="'


def test_else_after_else_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match=r"expected end; found \{\{else\}\}"):
        Template("{{if .X}}a{{else}}b{{else}}c{{end}}")


def test_comment_must_open_the_action() -> None:
    with pytest.raises(InvalidArgument, match='unexpected "/" in command'):
        Template("{{ /* not a comment */ }}")
