"""CreateOptions' annotations (what mypy checks callers against) name exactly the
options its table of defaults accepts."""

from kade.engine.options import DEFAULTS, CreateOptions


def test_every_option_is_annotated_and_every_annotation_is_an_option():
    annotated = set(CreateOptions.__annotations__) - {"image", "command"}
    assert annotated == set(DEFAULTS)


def test_defaults_are_fresh_per_instance():
    a, b = CreateOptions("x"), CreateOptions("y", ["sh"])
    a.env.append("A=1")
    assert b.env == [] and b.command == ["sh"] and a.restart == "no"
