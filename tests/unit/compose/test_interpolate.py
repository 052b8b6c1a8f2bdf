import pytest

from kade.compose.dotenv import parse as parse_dotenv
from kade.compose.interpolate import TemplateError, interpolate, substitute
from kade.errors import InvalidArgument

ENV = {"A": "a", "EMPTY": "", "N": "5"}.get


@pytest.mark.parametrize("template,expected", [
    ("$A", "a"), ("${A}", "a"), ("x${A}y", "xay"), ("${UNSET}", ""),
    ("${UNSET:-d}", "d"), ("${EMPTY:-d}", "d"), ("${EMPTY-d}", ""), ("${UNSET-d}", "d"),
    ("${A:+alt}", "alt"), ("${EMPTY:+alt}", ""), ("${EMPTY+alt}", "alt"), ("${UNSET+alt}", ""),
    ("$$A", "$A"), ("$$${A}", "$a"), ("cost $5", "cost $5"), ("a $ b", "a $ b"),
    ("${UNSET:-${ALSO:-${A}}}", "a"), ("${UNSET:-${A}-x}-y", "a-x-y"),
    ("${A:?never shown}", "a"), ("${EMPTY?fine}", ""),
])
def test_substitute(template, expected):
    assert substitute(template, ENV) == expected


@pytest.mark.parametrize("template,message", [
    ("${UNSET:?need it}", "required variable UNSET is missing a value: need it"),
    ("${EMPTY:?}", "required variable EMPTY is missing a value"),
    ("${UNSET?}", "required variable UNSET is missing a value"),
    ("${UNSET:?${A} needed}", "required variable UNSET is missing a value: a needed"),
])
def test_required(template, message):
    with pytest.raises(TemplateError, match="^" + message.replace("$", r"\$") + "$"):
        substitute(template, ENV)


@pytest.mark.parametrize("template", ["${A B}", "${", "${}", "${A%x}"])
def test_invalid(template):
    with pytest.raises(TemplateError) as e:
        substitute(template, ENV)
    assert e.value.invalid


def test_unset_warns_once_per_name():
    seen = []
    substitute("${NOPE} $NOPE", ENV, seen.append)
    assert seen[0] == 'The "NOPE" variable is not set. Defaulting to a blank string.'


def test_tree_casts_and_names_the_path():
    doc = {"services": {"web": {"deploy": {"replicas": "${N}"}, "tty": "${T:-true}",
                                "image": "i:${N}"}}}
    out = interpolate(doc, ENV, "f.yaml")
    assert out["services"]["web"] == {"deploy": {"replicas": 5}, "tty": True, "image": "i:5"}
    with pytest.raises(InvalidArgument, match=r"^error while interpolating "
                       r"services\.web\.image in f\.yaml: required variable X"):
        interpolate({"services": {"web": {"image": "${X:?}"}}}, ENV, "f.yaml")


def test_dotenv():
    text = ('# comment\nA=1\nexport B = two # inline\nC="x\\ny ${A}"\n'
            "D='lit ${A}'\nE=${B}-${FROM_ENV}\nBARE\nM=\"two\nlines\"\nQ=a#not-a-comment\n")
    env = parse_dotenv(text, ".env", {"BARE": "b", "FROM_ENV": "e"}.get)
    assert env == {"A": "1", "B": "two", "C": "x\ny 1", "D": "lit ${A}", "E": "two-e",
                   "BARE": "b", "M": "two\nlines", "Q": "a#not-a-comment"}
