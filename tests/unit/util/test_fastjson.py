"""kade.util.fastjson reads and writes what the json package does, without `re`."""

import json
import math
import os
import subprocess
import sys

import pytest

from kade.util import fastjson

SRC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "src")

VALUES = [
    {"Id": "ab" * 32, "Args": [], "Config": {"Labels": {"a": "b"}, "Env": ["X=1"]},
     "Nested": [1, -2, 2.5, 1e-300, 10 ** 30, None, True, False, {"k": {}}]},
    [], {}, "plain", "quotes \" and \\ and \n\t\x01", "é ü 中 😀", "surrogate \udcff",
    0, -1, 1.0, 3.141592653589793, None, True, float("inf"), float("-inf"),
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_dumps_is_json_with_compact_separators(value):
    assert fastjson.dumps(value) == json.dumps(value, separators=(",", ":"))


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_loads_reads_what_json_writes_in_any_layout(value):
    for text in (json.dumps(value), json.dumps(value, indent=2), f" \n{json.dumps(value)}\n",
                 fastjson.dumps(value)):
        assert json.dumps(fastjson.loads(text)) == json.dumps(value)
    assert json.dumps(fastjson.loads(json.dumps(value).encode())) == json.dumps(value)


def test_nan_round_trips():
    assert math.isnan(fastjson.loads(fastjson.dumps(float("nan"))))


@pytest.mark.parametrize("text", ["", "   ", "{", "[1,]", "1 2", "{'a': 1}", "nul",
                                  '{"a": 1}}', '"unterminated'])
def test_loads_refuses_what_json_refuses(text):
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        fastjson.loads(text)


def test_dumps_refuses_what_json_refuses():
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular"):
        fastjson.dumps(loop)
    with pytest.raises(TypeError, match="object is not JSON serializable"):
        fastjson.dumps({"x": object()})
    # a failed call leaves nothing behind for the next one
    shared = {"a": 1}
    assert fastjson.dumps([shared, shared]) == '[{"a":1},{"a":1}]'


def test_it_imports_neither_json_nor_re():
    code = ("import sys\nfrom kade.util import fastjson\n"
            "fastjson.loads(fastjson.dumps({'a': [1.5, 'x']}))\n"
            "print(sorted(m for m in ('json', 're', 'enum') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.path.abspath(SRC)})
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
