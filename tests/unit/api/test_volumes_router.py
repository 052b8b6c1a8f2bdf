"""The volumes router: docker's shapes and statuses over a fake VolumeService."""

from __future__ import annotations

import json
from urllib.parse import quote

from api_helpers import body_json, call, make_app

from kade.engine.listing import VolumeSummary
from kade.errors import Conflict, NotFound


class FakeVolumes:
    def __init__(self):
        self.vols: dict[str, dict] = {}
        self.used: set[str] = set()
        self.pruned_with = None

    def list_volumes(self, filters=None):
        filters = filters or {}
        return [VolumeSummary(name=n, driver="local", mountpoint="", labels=r["Labels"])
                for n, r in self.vols.items()
                if not filters.get("name") or any(v in n for v in filters["name"])]

    def create(self, name, labels, driver, options):
        if driver != "local":
            raise NotFound(f'plugin "{driver}" not found')
        name = name or "anon123"
        self.vols.setdefault(name, {"Name": name, "Driver": driver, "Labels": labels,
                                    "Options": options, "Mountpoint": f"/v/{name}/_data",
                                    "Scope": "local", "CreatedAt": "now"})
        return self.vols[name]

    def get(self, name):
        if name not in self.vols:
            raise NotFound(f"get {name}: no such volume")
        return self.vols[name]

    def remove(self, name, force=False):
        self.get(name)
        if name in self.used and not force:
            raise Conflict(f"remove {name}: volume is in use - [abc]")
        del self.vols[name]

    def prune(self, all_, match):
        self.pruned_with = (all_, match)
        gone = [n for n, r in self.vols.items() if match is None or match(0.0, r["Labels"])]
        for n in gone:
            del self.vols[n]
        return gone, 42


def _app():
    fake = FakeVolumes()
    return make_app("volumes", fake), fake


def test_create_then_inspect_and_list_with_a_name_filter():
    app, _ = _app()
    resp = call(app, "POST", "/v1.43/volumes/create",
                {"Name": "data", "Labels": {"a": "1"}, "DriverOpts": {"o": "x"}})
    assert resp.status == 201
    assert body_json(resp)["Name"] == "data"
    call(app, "POST", "/volumes/create", {"Name": "other"})
    got = body_json(call(app, "GET", "/v1.43/volumes/data"))
    assert got["Labels"] == {"a": "1"} and got["Options"] == {"o": "x"}
    flt = quote(json.dumps({"name": ["dat"]}))
    listed = body_json(call(app, "GET", f"/v1.43/volumes?filters={flt}"))
    assert [v["Name"] for v in listed["Volumes"]] == ["data"]
    assert listed["Warnings"] == []


def test_create_without_a_name_makes_an_anonymous_volume():
    app, _ = _app()
    assert body_json(call(app, "POST", "/volumes/create", b""))["Name"] == "anon123"


def test_unknown_driver_and_missing_volume_are_404s_with_docker_messages():
    app, _ = _app()
    resp = call(app, "POST", "/volumes/create", {"Name": "x", "Driver": "nfs"})
    assert resp.status == 404 and "plugin \"nfs\" not found" in body_json(resp)["message"]
    resp = call(app, "GET", "/volumes/nope")
    assert resp.status == 404
    assert body_json(resp)["message"] == "get nope: no such volume"


def test_bad_labels_are_a_400():
    app, _ = _app()
    resp = call(app, "POST", "/volumes/create", {"Name": "x", "Labels": ["a"]})
    assert resp.status == 400 and "Labels" in body_json(resp)["message"]


def test_remove_in_use_is_a_409_unless_forced():
    app, fake = _app()
    call(app, "POST", "/volumes/create", {"Name": "busy"})
    fake.used.add("busy")
    resp = call(app, "DELETE", "/v1.43/volumes/busy")
    assert resp.status == 409 and "in use" in body_json(resp)["message"]
    assert call(app, "DELETE", "/v1.43/volumes/busy?force=1").status == 204
    assert "busy" not in fake.vols
    assert call(app, "DELETE", "/v1.43/volumes/busy").status == 404


def test_prune_defaults_by_version_and_honours_all_and_label_filters():
    app, fake = _app()
    call(app, "POST", "/volumes/create", {"Name": "keep", "Labels": {"k": "1"}})
    call(app, "POST", "/volumes/create", {"Name": "drop"})
    flt = quote(json.dumps({"label!": ["k"]}))
    out = body_json(call(app, "POST", f"/v1.43/volumes/prune?filters={flt}"))
    assert out == {"VolumesDeleted": ["drop"], "SpaceReclaimed": 42}
    assert fake.pruned_with[0] is False  # 1.42+: anonymous ones only
    call(app, "POST", "/v1.41/volumes/prune")
    assert fake.pruned_with == (True, None)
    flt = quote(json.dumps({"all": ["true"]}))
    call(app, "POST", f"/v1.43/volumes/prune?filters={flt}")
    assert fake.pruned_with == (True, None)


def test_prune_with_an_unknown_filter_is_a_400():
    app, _ = _app()
    flt = quote(json.dumps({"until": ["10m"]}))
    resp = call(app, "POST", f"/v1.43/volumes/prune?filters={flt}")
    assert resp.status == 400 and "until" in body_json(resp)["message"]
