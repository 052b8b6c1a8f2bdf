"""The images router over a fake: shapes, statuses and docker's progress streams."""

from __future__ import annotations

import base64
import io
import json

from api_helpers import body_bytes, body_json, call, json_stream, make_app

from kade.engine.listing import ImageSummary
from kade.errors import Conflict, NotFound
from kade.remotes.progress import message

IMG = "sha256:" + "a" * 64


class FakeImages:
    def __init__(self):
        self.calls: list = []

    def list_images(self, all=False, filters=None):
        self.calls.append(("list", all, filters))
        return [ImageSummary(id=IMG, created=1.5, size=10,
                             repo_tags=["docker.io/library/busybox:latest"],
                             repo_digests={"docker.io/library/busybox": "sha256:d"},
                             intermediate=False)]

    def labels(self, image_id):
        return {"l": "1"}

    def inspect(self, ref):
        if ref != "busybox":
            raise NotFound(f"No such image: {ref}")
        return {"Id": IMG}

    def tag(self, ref, target):
        self.calls.append(("tag", ref, target))

    def remove(self, ref, force):
        if ref == "used" and not force:
            raise Conflict("conflict: unable to delete aaaa (must be forced)")
        return [("Untagged", "busybox:latest"), ("Deleted", IMG)]

    def pull(self, ref, platform, emit, credentials):
        self.calls.append(("pull", ref, platform, credentials and credentials("h")))
        if ref.startswith("missing"):
            raise NotFound(f"manifest for {ref} not found")
        emit(message("Pulling fs layer", "abc"))
        if ref.startswith("broken"):
            raise OSError("connection reset")
        emit(message("Status: Downloaded newer image for busybox:latest"))
        return []

    def import_(self, stream, ref, changes, message):
        self.calls.append(("import", stream.read(), ref, changes, message))
        return IMG

    def save(self, refs):
        self.calls.append(("save", refs))
        return io.BytesIO(b"TAR" * 1000)

    def load(self, stream):
        self.calls.append(("load", stream.read()))
        return ["Loaded image: busybox:latest"]

    def commit(self, container, reference, changes, message, author, pause):
        self.calls.append(("commit", container, reference, changes, message, author, pause))
        return IMG


def _app():
    fake = FakeImages()
    return make_app("images", fake), fake


def test_list_has_docker_fields_and_familiar_names():
    app, fake = _app()
    out = body_json(call(app, "GET", "/v1.43/images/json?all=1&filter=busy*"))
    assert fake.calls[-1] == ("list", True, {"reference": ["busy*"]})
    assert out == [{"Id": IMG, "ParentId": "", "RepoTags": ["busybox:latest"],
                    "RepoDigests": ["busybox@sha256:d"], "Created": 1, "Size": 10,
                    "SharedSize": -1, "VirtualSize": 10, "Labels": {"l": "1"},
                    "Containers": -1}]


def test_inspect_of_a_name_with_slashes_and_a_missing_image():
    app, _ = _app()
    assert body_json(call(app, "GET", "/v1.43/images/busybox/json")) == {"Id": IMG}
    resp = call(app, "GET", "/v1.43/images/my/repo/name/json")
    assert resp.status == 404 and body_json(resp)["message"] == "No such image: my/repo/name"


def test_tag_and_remove():
    app, fake = _app()
    assert call(app, "POST", "/images/busybox/tag?repo=reg:5000/x&tag=v1").status == 201
    assert fake.calls[-1] == ("tag", "busybox", "reg:5000/x:v1")
    assert call(app, "POST", "/images/busybox/tag").status == 400
    assert body_json(call(app, "DELETE", "/images/busybox")) == [
        {"Untagged": "busybox:latest"}, {"Deleted": IMG}]
    assert call(app, "DELETE", "/images/used").status == 409
    assert call(app, "DELETE", "/images/used?force=1").status == 200


def test_pull_streams_progress_and_uses_the_registry_auth_header():
    app, fake = _app()
    auth = base64.urlsafe_b64encode(json.dumps({"username": "u", "password": "p"}).encode())
    resp = call(app, "POST", "/v1.43/images/create?fromImage=busybox&tag=latest",
                headers={"X-Registry-Auth": auth.decode().rstrip("=")})
    assert resp.status == 200
    msgs = json_stream(resp)
    assert msgs[0] == {"status": "Pulling fs layer", "id": "abc"}
    assert msgs[-1]["status"].startswith("Status: Downloaded")
    assert fake.calls[-1][:3] == ("pull", "busybox:latest", None)
    assert tuple(fake.calls[-1][3]) == ("u", "p")


def test_pull_error_before_any_output_is_a_status_and_after_it_an_error_message():
    app, _ = _app()
    resp = call(app, "POST", "/images/create?fromImage=missing&tag=1")
    assert resp.status == 404 and "not found" in body_json(resp)["message"]
    msgs = json_stream(call(app, "POST", "/images/create?fromImage=broken"))
    assert msgs[-1] == {"errorDetail": {"message": "connection reset"},
                        "error": "connection reset"}
    assert call(app, "POST", "/images/create").status == 400
    resp = call(app, "POST", "/images/create?fromImage=x", headers={"X-Registry-Auth": "%%"})
    assert resp.status == 400


def test_import_reads_the_body():
    app, fake = _app()
    msgs = json_stream(call(app, "POST",
                            "/images/create?fromSrc=-&repo=imp&tag=v&changes=CMD+sh&message=m",
                            b"tarbytes"))
    assert msgs == [{"status": IMG}]
    assert fake.calls[-1] == ("import", b"tarbytes", "imp:v", ["CMD sh"], "m")
    assert call(app, "POST", "/images/create?fromSrc=http://x/y.tar").status == 501


def test_save_streams_the_tarball_and_load_reports_docker_lines():
    app, fake = _app()
    resp = call(app, "GET", "/images/get?names=busybox&names=alpine")
    assert resp.headers["Content-Type"] == "application/x-tar"
    assert body_bytes(resp) == b"TAR" * 1000
    assert fake.calls[-1] == ("save", ["busybox", "alpine"])
    assert body_bytes(call(app, "GET", "/images/busybox/get")) == b"TAR" * 1000
    msgs = json_stream(call(app, "POST", "/images/load", b"archive"))
    assert msgs == [{"stream": "Loaded image: busybox:latest\n"}]
    assert fake.calls[-1] == ("load", b"archive")


def test_commit_search_and_prune_errors():
    app, fake = _app()
    resp = call(app, "POST", "/commit?container=c1&repo=snap&tag=1&comment=m&author=a", {})
    assert resp.status == 201 and body_json(resp) == {"Id": IMG}
    assert fake.calls[-1] == ("commit", "c1", "snap:1", [], "m", "a", True)
    assert call(app, "POST", "/commit").status == 400
    resp = call(app, "GET", "/images/search?term=busybox")
    assert resp.status == 501 and "search" in body_json(resp)["message"]
