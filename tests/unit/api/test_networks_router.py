"""The networks router: docker's bodies become the engine's Networks calls."""

from __future__ import annotations

import json
from urllib.parse import quote

from api_helpers import body_json, call, make_app

from kade.errors import Conflict, Forbidden, NotFound


class FakeNetworks:
    def __init__(self):
        self.nets = {"bridge": {"Name": "bridge", "Id": "b" * 64, "Driver": "bridge",
                                "Private": {"Bridge": "kade0"}, "Labels": {}}}
        self.calls: list = []

    def list_networks(self, filters=None):
        self.calls.append(("list", filters))
        return list(self.nets.values())

    def inspect(self, ref):
        if ref not in self.nets:
            raise NotFound(f"network {ref} not found")
        return {**self.nets[ref], "Containers": {"c1": {}}}

    def create(self, name, driver="bridge", subnets=(), gateways=(), ip_ranges=(),
               internal=False, ipv6=False, labels=None, options=None, attachable=False):
        if name in self.nets:
            raise Conflict(f"network with name {name} already exists")
        self.calls.append(("create", name, driver, subnets, gateways, ip_ranges, internal,
                           ipv6, labels, options, attachable))
        self.nets[name] = {"Name": name, "Id": "n" * 64}
        return "n" * 64

    def remove(self, ref):
        if ref == "bridge":
            raise Forbidden("bridge is a pre-defined network and cannot be removed")
        self.inspect(ref)
        del self.nets[ref]
        return ref

    def connect(self, ref, container, aliases=(), ip=None, ip6=None, links=()):
        self.calls.append(("connect", ref, container, aliases, ip, ip6, links))

    def disconnect(self, ref, container, force=False):
        self.calls.append(("disconnect", ref, container, force))

    def prune(self, flt=None):
        self.calls.append(("prune", flt))
        return ["old"]


def _app():
    fake = FakeNetworks()
    return make_app("networks", fake), fake


def test_list_passes_filters_and_hides_private_fields():
    app, fake = _app()
    flt = quote(json.dumps({"driver": {"bridge": True}}))
    out = body_json(call(app, "GET", f"/v1.43/networks?filters={flt}"))
    assert fake.calls == [("list", {"driver": ["bridge"]})]
    assert out[0]["Name"] == "bridge" and "Private" not in out[0]
    assert out[0]["Containers"] == {}


def test_create_maps_ipam_and_flags_and_answers_201_with_the_id():
    app, fake = _app()
    resp = call(app, "POST", "/v1.43/networks/create", {
        "Name": "front", "Driver": "bridge", "Internal": True, "Attachable": True,
        "EnableIPv6": True, "Labels": {"l": "1"}, "Options": {"o": "2"},
        "IPAM": {"Driver": "default", "Config": [
            {"Subnet": "10.9.0.0/24"},
            {"Subnet": "fd00:9::/64", "Gateway": "fd00:9::1", "IPRange": "fd00:9::/80"}]}})
    assert resp.status == 201
    assert body_json(resp) == {"Id": "n" * 64, "Warning": ""}
    assert fake.calls[-1] == ("create", "front", "bridge", ["10.9.0.0/24", "fd00:9::/64"],
                              [None, "fd00:9::1"], [None, "fd00:9::/80"], True, True,
                              {"l": "1"}, {"o": "2"}, True)


def test_create_errors_are_docker_statuses():
    app, _ = _app()
    assert call(app, "POST", "/networks/create", {}).status == 400
    assert call(app, "POST", "/networks/create", {"Name": "bridge"}).status == 409
    resp = call(app, "POST", "/networks/create",
                {"Name": "x", "IPAM": {"Config": [{"Gateway": "10.0.0.1"}]}})
    assert resp.status == 400 and "subnet" in body_json(resp)["message"]
    resp = call(app, "POST", "/networks/create", {"Name": "x", "IPAM": {"Driver": "dhcp"}})
    assert resp.status == 400 and "dhcp" in body_json(resp)["message"]


def test_inspect_remove_and_their_errors():
    app, _ = _app()
    call(app, "POST", "/networks/create", {"Name": "front"})
    assert body_json(call(app, "GET", "/v1.43/networks/front"))["Containers"] == {"c1": {}}
    resp = call(app, "GET", "/v1.43/networks/nope")
    assert resp.status == 404 and body_json(resp)["message"] == "network nope not found"
    assert call(app, "DELETE", "/v1.43/networks/bridge").status == 403
    assert call(app, "DELETE", "/v1.43/networks/front").status == 204
    assert call(app, "DELETE", "/v1.43/networks/front").status == 404


def test_connect_and_disconnect_bodies():
    app, fake = _app()
    resp = call(app, "POST", "/networks/front/connect", {
        "Container": "web", "EndpointConfig": {
            "Aliases": ["w"], "Links": ["db:db"],
            "IPAMConfig": {"IPv4Address": "10.9.0.5"}}})
    assert resp.status == 200
    assert fake.calls[-1] == ("connect", "front", "web", ["w"], "10.9.0.5", None, ["db:db"])
    assert call(app, "POST", "/networks/front/disconnect",
                {"Container": "web", "Force": True}).status == 200
    assert fake.calls[-1] == ("disconnect", "front", "web", True)
    assert call(app, "POST", "/networks/front/connect", {}).status == 400


def test_prune_passes_label_and_until_filters():
    app, fake = _app()
    flt = quote(json.dumps({"label": ["a=b"], "until": ["2000-01-01T00:00:00Z"]}))
    out = body_json(call(app, "POST", f"/v1.43/networks/prune?filters={flt}"))
    assert out == {"NetworksDeleted": ["old"]}
    flt_obj = fake.calls[-1][1]
    assert flt_obj.labels == ["a=b"] and flt_obj.until is not None
    bad = quote(json.dumps({"driver": ["x"]}))
    assert call(app, "POST", f"/v1.43/networks/prune?filters={bad}").status == 400
