"""The schema check against `jsonschema` (the reference implementation), on every
golden case and on crafted documents: both must accept and reject the same ones."""

import pathlib

import pytest

from kade.compose.merge import strip
from kade.compose.schema import schema, validate
from kade.compose.yamlfile import parse

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is the oracle")
DATA = pathlib.Path(__file__).parent / "testdata"
DOCS = [
    {"services": {"web": {"image": "a", "foo": 1}}},
    {"services": {"web": {"image": 1}}},
    {"services": {"web": {"ports": [[80]]}}},
    {"services": {"web": {"ports": [{"target": 80, "published": "8080"}]}}},
    {"services": {"web": {"depends_on": {"db": {"condition": "nope"}}}}},
    {"services": {"web": {"depends_on": {"db": {}}}}},
    {"services": {"web": {"cap_add": ["A", "A"]}}},
    {"services": {"web": {"environment": {"A": [1]}}}},
    {"services": {"my web": {}}},
    {"volumes": {"v": None}, "x-any": {"thing": 1}},
    {"services": {"web": {"build": {"context": ".", "bogus": 1}}}},
    {"services": {"web": {"ulimits": {"nofile": {"soft": 1, "hard": 2}}}}},
]


def _documents():
    for path in sorted(DATA.glob("*/*.y*ml")):
        try:
            docs = parse(path.read_text(), str(path))
        except Exception:  # noqa: BLE001 - cases that fail before validation
            continue
        for doc in docs:
            if isinstance(doc, dict) and "${" not in path.read_text():
                yield path.parent.name + "/" + path.name, strip(doc)
    for i, doc in enumerate(DOCS):
        yield f"doc{i}", doc


@pytest.mark.parametrize("name,doc", list(_documents()))
def test_agrees_with_jsonschema(name, doc):
    reference = jsonschema.Draft7Validator(schema())
    assert (validate(doc) is None) == reference.is_valid(doc), validate(doc)
