"""The error table: the spec's fourteen codes, each with its HTTP status, in one place."""

import json
import re

from kade.registry import errcode
from kade.registry.errcode import RegistryError

SPEC = {  # distribution-spec "Error Codes", with distribution's statuses
    "BLOB_UNKNOWN": 404, "BLOB_UPLOAD_INVALID": 400, "BLOB_UPLOAD_UNKNOWN": 404,
    "DIGEST_INVALID": 400, "MANIFEST_BLOB_UNKNOWN": 400, "MANIFEST_INVALID": 400,
    "MANIFEST_UNKNOWN": 404, "NAME_INVALID": 400, "NAME_UNKNOWN": 404, "SIZE_INVALID": 400,
    "UNAUTHORIZED": 401, "DENIED": 403, "UNSUPPORTED": 405, "TOOMANYREQUESTS": 429,
}


def test_table_holds_every_spec_code_with_its_status():
    for value, status in SPEC.items():
        assert errcode.TABLE[value].status == status
        assert getattr(errcode, value) is errcode.TABLE[value]
    assert set(errcode.TABLE) - set(SPEC) == {"UNKNOWN"}


def test_codes_are_upper_case_identifiers_with_messages():
    for value, code in errcode.TABLE.items():
        assert re.fullmatch(r"[A-Z_]+", value)
        assert code.message and code.message == code.message.lower()


def test_error_body_is_the_spec_envelope():
    e = RegistryError(errcode.BLOB_UNKNOWN, {"digest": "sha256:x"})
    doc = json.loads(errcode.body(e))
    assert doc == {"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry",
                               "detail": {"digest": "sha256:x"}}]}


def test_status_and_message_can_be_overridden_per_raise():
    e = RegistryError(errcode.BLOB_UPLOAD_INVALID, status=416, message="out of order",
                      headers={"Range": "0-9"})
    assert (e.status, e.message, e.headers, str(e)) == (416, "out of order", {"Range": "0-9"},
                                                        "out of order")
    assert "detail" not in e.to_json()
