"""kade.build.shell against a table of words, in the spirit of BuildKit's envVarTest."""

import json
import os

import pytest

from kade.build.shell import Lexer, ShellError, process_word, process_words, referenced_names

TABLE = json.load(open(os.path.join(os.path.dirname(__file__), "testdata", "shell_cases.json"),
                       encoding="utf-8"))


@pytest.mark.parametrize("case", TABLE["cases"], ids=lambda c: c.get("escape", "") + c["in"])
def test_word_table(case):
    lexer = Lexer(case.get("escape", "\\"))
    if "error" in case:
        with pytest.raises(ShellError) as info:
            lexer.process(case["in"], TABLE["env"])
        assert str(info.value) == case["error"]
        return
    result = lexer.process(case["in"], TABLE["env"])
    assert result.result == case["word"]
    assert result.words == case["words"]
    assert sorted(result.matched | result.unmatched) == case["names"]


def test_mandatory_message_is_expanded():
    with pytest.raises(ShellError, match="V: need x"):
        process_word("${V:?need $A}", {"A": "x"})
    with pytest.raises(ShellError, match="V: need x"):
        process_word("${V:?need $A}", {"A": "x", "V": ""})
    assert process_word("${V?need $A}", {"A": "x", "V": ""}) == ""


def test_helpers_and_name_tracking():
    assert process_words('a "b c" $X', {"X": "d e"}) == ["a", "b c", "d", "e"]
    assert referenced_names("${A:-$B} $C '$D'", {"A": "1"}) == {"A", "B", "C"}
    result = Lexer().process("$SET $UNSET", {"SET": "1"})
    assert (result.matched, result.unmatched) == ({"SET"}, {"UNSET"})


def test_options_kept_for_later_passes():
    assert Lexer(raw_quotes=True).process_word("'a' \"$B\"", {"B": "b"}) == "'a' \"b\""
    assert Lexer(skip_unset=True).process_word("$A ${B} ${C:-x} $D", {"D": "d"}) == "$A ${B} ${C:-x} d"
    assert Lexer(skip_quotes=True).process_word("'a b'", {}) == "'a b'"
    assert Lexer(raw_escapes=True).process_word("a\\$B", {"B": "b"}) == "a\\$B"
