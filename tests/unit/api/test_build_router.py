"""The build router over a fake builder: the legacy builder's stream and options."""

from __future__ import annotations

import json
from urllib.parse import quote

from api_helpers import body_json, call, json_stream, make_app

from kade.build.backend import StepFailed

IMG = "sha256:" + "b" * 64


class FakeBuild:
    def __init__(self, fail: bool = False):
        self.fail = fail
        self.calls: list = []

    def build(self, body, dockerfile, tags, options, progress):
        self.calls.append((body.read(), dockerfile, tags, options))
        v = progress.start("[1/2] FROM busybox")
        progress.done(v)
        v = progress.start("[2/2] RUN echo hi")
        progress.log(v, b"hi\n")
        if self.fail:
            raise StepFailed("process did not complete successfully", 3, "/bin/sh -c false")
        progress.cached(v)
        return IMG

    def prune(self, all_, until):
        self.calls.append(("prune", all_, until))
        return ["sha256:c"], 7


def test_build_streams_steps_output_and_the_final_lines():
    fake = FakeBuild()
    app = make_app("build", fake)
    q = ("t=x:1&t=y&dockerfile=sub/Df&buildargs=" + quote(json.dumps({"A": "1"})) +
         "&labels=" + quote(json.dumps({"l": "v"})) + "&target=t&nocache=1&pull=1"
         "&cachefrom=" + quote(json.dumps(["c:1"])) + "&networkmode=host&platform=linux/amd64")
    msgs = json_stream(call(app, "POST", f"/v1.41/build?{q}", b"TAR"))
    assert [m.get("stream") for m in msgs[:4]] == [
        "Step 1/2 : FROM busybox\n", "Step 2/2 : RUN echo hi\n", "hi\n", " ---> Using cache\n"]
    assert msgs[4] == {"aux": {"ID": IMG}}
    assert msgs[5:] == [{"stream": f"Successfully built {'b' * 12}\n"},
                        {"stream": "Successfully tagged x:1\n"},
                        {"stream": "Successfully tagged y:latest\n"}]
    body, dockerfile, tags, options = fake.calls[0]
    assert (body, dockerfile, tags) == (b"TAR", "sub/Df", ["x:1", "y"])
    assert options == {"build_args": {"A": "1"}, "labels": {"l": "v"}, "target": "t",
                       "no_cache": True, "pull": True, "cache_from": ["c:1"],
                       "network": "host", "secrets": {}, "platform": "linux/amd64"}


def test_quiet_build_streams_only_the_id():
    app = make_app("build", FakeBuild())
    msgs = json_stream(call(app, "POST", "/build?q=1", b"TAR"))
    assert msgs == [{"aux": {"ID": IMG}}, {"stream": IMG + "\n"}]


def test_failed_step_ends_with_the_legacy_message_and_code():
    app = make_app("build", FakeBuild(fail=True))
    msgs = json_stream(call(app, "POST", "/build", b"TAR"))
    text = "The command '/bin/sh -c false' returned a non-zero code: 3"
    assert msgs[-1] == {"errorDetail": {"code": 3, "message": text}, "error": text}


def test_bad_options_are_400s_before_any_output():
    app = make_app("build", FakeBuild())
    assert call(app, "POST", "/build?networkmode=mynet", b"TAR").status == 400
    assert call(app, "POST", "/build?buildargs=%5B1%5D", b"TAR").status == 400
    assert call(app, "POST", "/build?remote=https://x/y.git").status == 501


def test_build_prune():
    fake = FakeBuild()
    app = make_app("build", fake)
    out = body_json(call(app, "POST", "/build/prune?all=1"))
    assert out == {"CachesDeleted": ["sha256:c"], "SpaceReclaimed": 7}
    assert fake.calls[-1] == ("prune", True, None)
    bad = quote(json.dumps({"type": ["x"]}))
    assert call(app, "POST", f"/build/prune?filters={bad}").status == 400
