"""Bad requests get docker's status codes and bodies, and leave nothing behind."""

import http.client
import json
import socket

import pytest


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def request(sock_path, method, url, body=None, headers=None):
    conn = UnixHTTP(sock_path)
    try:
        conn.request(method, url, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read(), resp
    finally:
        conn.close()


def test_unknown_endpoint_is_404_with_docker_body(service):
    status, body, _ = request(service, "GET", "/v1.43/nope")
    assert (status, json.loads(body)) == (404, {"message": "page not found"})


def test_no_such_container(service):
    status, body, _ = request(service, "GET", "/containers/nosuch/json")
    assert (status, json.loads(body)) == (404, {"message": "No such container: nosuch"})


def test_bad_json_is_400(service, kade):
    status, body, _ = request(service, "POST", "/containers/create", b"{not json",
                              {"Content-Type": "application/json"})
    assert status == 400 and "invalid JSON" in json.loads(body)["message"]
    status, body, _ = request(service, "POST", "/containers/create",
                              json.dumps({"Image": "busybox", "Cmd": 5}).encode())
    assert (status, json.loads(body)) == (400, {"message": "Cmd must be a list of strings"})
    assert kade("ps", "-aq").stdout == ""


def test_version_out_of_range(service):
    status, body, _ = request(service, "GET", "/v1.99/version")
    assert status == 400 and "too new" in json.loads(body)["message"]
    status, body, _ = request(service, "GET", "/v1.12/version")
    assert status == 400 and "too old" in json.loads(body)["message"]


def test_huge_body_is_refused(service, kade):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(service)
    s.sendall(b"POST /containers/create HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{")
    head = s.recv(4096).decode()
    s.close()
    assert head.startswith("HTTP/1.1 413 ")
    assert kade("ps", "-aq").stdout == ""


def test_client_gone_mid_stream_leaves_nothing(service, kade):
    """A client that leaves an attach before the start, and a logs -f, frees them."""
    kade("create", "--name", "left", "busybox", "echo", "x")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(service)
    s.sendall(b"POST /containers/left/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: x\r\n"
              b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
    assert s.recv(4096).startswith(b"HTTP/1.1 101 ")
    s.close()
    status, _, _ = request(service, "POST", "/containers/left/start")
    assert status == 204
    status, body, _ = request(service, "POST", "/containers/left/wait")
    assert (status, json.loads(body)["StatusCode"]) == (200, 0)
    status, _, _ = request(service, "DELETE", "/containers/left")
    assert status == 204
    assert kade("ps", "-aq").stdout == ""
    status, body, _ = request(service, "GET", "/_ping")
    assert (status, body) == (200, b"OK")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_ping_headers(service, method):
    status, body, resp = request(service, method, "/_ping")
    assert status == 200 and body == (b"OK" if method == "GET" else b"")
    assert resp.getheader("API-Version") == "1.50"
    assert resp.getheader("Ostype") == "linux"
    assert resp.getheader("Docker-Experimental") == "false"
    assert resp.getheader("Builder-Version") == "1"
