"""kade.build.parser: golden Dockerfiles (testdata/<case>/{Dockerfile,expected.json});
cases named neg-* must fail with the recorded message."""

import json
import os

import pytest

from kade.build.parser import DockerfileError, Heredoc, parse, parse_file

TESTDATA = os.path.join(os.path.dirname(__file__), "testdata")
CASES = sorted(d for d in os.listdir(TESTDATA) if os.path.isdir(os.path.join(TESTDATA, d)))
# Where the `dockerfile` package (an older BuildKit parser, used as an oracle) differs:
# ENV/LABEL separators are not in its output, ONBUILD drops the trigger's flags and
# heredocs, old BuildKit ignored text after an exec-form array and needed `<<EOF`
# unspaced, and the neg-* checks it leaves to BuildKit's instruction layer.
ORACLE_DIFFERS = {"env-label-arg", "exec-and-shell-forms", "heredoc-not-in-json-or-other",
                  "heredoc-onbuild", "onbuild"}


def _case(name):
    with open(os.path.join(TESTDATA, name, "Dockerfile"), "rb") as f:
        source = f.read()
    with open(os.path.join(TESTDATA, name, "expected.json"), encoding="utf-8") as f:
        return source, json.load(f)


def test_there_are_enough_golden_cases():
    negative = [c for c in CASES if c.startswith("neg-")]
    assert len(CASES) - len(negative) >= 15 and len(negative) >= 10


@pytest.mark.parametrize("name", CASES)
def test_golden(name):
    source, expected = _case(name)
    if "error" in expected:
        with pytest.raises(DockerfileError) as info:
            parse(source)
        assert str(info.value) == expected["error"]
    else:
        assert parse(source).to_dict() == expected


@pytest.mark.parametrize("name", [c for c in CASES if c not in ORACLE_DIFFERS
                                  and not c.startswith("neg-")])
def test_agrees_with_buildkit_parser(name):
    dockerfile = pytest.importorskip("dockerfile")
    source, _ = _case(name)
    theirs = [(c.cmd.upper(), list(c.flags), list(c.value), c.json, c.start_line, c.end_line,
               [(h.name, h.content) for h in c.heredocs])
              for c in dockerfile.parse_string(source.decode())]
    ours = [(i.cmd, i.flags, i.args, i.json, i.start_line, i.end_line,
             [(h.name, h.content) for h in i.heredocs])
            for i in parse(source).instructions]
    assert ours == theirs


def test_error_names_file_and_line(tmp_path):
    path = tmp_path / "app.Dockerfile"
    path.write_text("FROM x\n\nFOOO bar\n")
    with pytest.raises(DockerfileError) as info:
        parse_file(str(path))
    assert str(info.value).startswith("app.Dockerfile:3: unknown instruction: FOOO")
    assert (info.value.filename, info.value.line) == ("app.Dockerfile", 3)


def test_heredoc_text_strips_tabs_only_when_chomped():
    assert Heredoc("EOF", "\ta\n\t\tb\n  c\n", chomp=True).text == "a\nb\n  c\n"
    assert Heredoc("EOF", "\ta\n").text == "\ta\n"


def test_comments_before_an_instruction_are_kept_as_buildkit_keeps_them():
    df = parse("# syntax=docker/dockerfile:1\n# build stage\nFROM x\n# a\n\n# b\nRUN a\n"
               "# dropped\n#\nCMD c\n")
    assert df.instructions[0].comments == ["build stage"]
    assert df.instructions[1].comments == ["a", "b"]  # blank lines do not separate
    assert df.instructions[2].comments == []  # an empty `#` does
    assert df.directives == {"syntax": "docker/dockerfile:1"}


def test_overlong_line_is_refused():
    with pytest.raises(DockerfileError, match="greater than max allowed size"):
        parse("FROM x\nRUN " + "a" * 70000 + "\n")
