"""docker 20.10's -p / --expose / -P grammar (go-connections v0.4.0's nat package and
the CLI's convertToStandardNotation), and host port allocation."""

import os
import socket
import subprocess
import sys

import pytest

from kade.errors import Conflict, InvalidArgument
from kade.network import ports
from kade.network.ports import (PortBinding, PortRequest, allocate, check_free,
                                from_port_bindings, local_port_range, overlaps, parse_expose,
                                parse_publish, publish_all, to_port_bindings)

R = PortRequest


@pytest.mark.parametrize("spec, expected", [
    ("80", [R("", 0, 0, 80, "tcp")]),
    ("8080:80", [R("", 8080, 8080, 80, "tcp")]),
    ("127.0.0.1:8080:80", [R("127.0.0.1", 8080, 8080, 80, "tcp")]),
    ("127.0.0.1::80", [R("127.0.0.1", 0, 0, 80, "tcp")]),
    ("[::1]:8080:80", [R("::1", 8080, 8080, 80, "tcp")]),
    ("[2001:4860:0:2001::68]::333", [R("2001:4860:0:2001::68", 0, 0, 333, "tcp")]),
    ("8000-8001:80-81", [R("", 8000, 8000, 80, "tcp"), R("", 8001, 8001, 81, "tcp")]),
    ("8000-8010:80", [R("", 8000, 8010, 80, "tcp")]),
    ("80-81", [R("", 0, 0, 80, "tcp"), R("", 0, 0, 81, "tcp")]),
    ("53:53/udp", [R("", 53, 53, 53, "udp")]),
    ("53:53/UDP", [R("", 53, 53, 53, "udp")]),
    ("9/sctp", [R("", 0, 0, 9, "sctp")]),
    ("80/", [R("", 0, 0, 80, "tcp")]),
    ("0.0.0.0:1234-1235:3333-3334/tcp", [R("0.0.0.0", 1234, 1234, 3333, "tcp"),
                                         R("0.0.0.0", 1235, 1235, 3334, "tcp")]),
    ("published=8080,target=80,protocol=udp", [R("", 8080, 8080, 80, "udp")]),
    ("target=80", [R("", 0, 0, 80, "tcp")]),
])
def test_publish_specs_parse_as_docker_parses_them(spec, expected):
    assert parse_publish([spec]) == expected


@pytest.mark.parametrize("spec, message", [
    ("foo", "Invalid containerPort: foo"),
    ("8080:foo", "Invalid containerPort: foo"),
    ("80-70", "Invalid containerPort: 80-70"),
    ("65536", "Invalid containerPort: 65536"),
    ("99999:80", "Invalid hostPort: 99999"),
    ("-1:80", "Invalid hostPort: -1"),
    ("1.2.3:80:80", "Invalid ip address: 1.2.3"),
    ("localhost:80:80", "Invalid ip address: localhost"),
    ("::1:8080:80", "Invalid ip address ::1: address ::1:: too many colons in address"),
    ("[::1:8080:80", "Invalid ip address [::1: address [::1:: missing ']' in address"),
    ("8000-8001:80-82", "Invalid ranges specified for container and host Ports: 80-82 and "
                        "8000-8001"),
    ("80/xyz", "Invalid proto: xyz"),
    ("8080:", "No port specified: 8080:<empty>"),
    ("", "No port specified: <empty>"),
    ("a=b,c", "invalid publish opts format (should be name=value but got 'c')"),
])
def test_a_bad_publish_spec_gets_dockers_message(spec, message):
    with pytest.raises(InvalidArgument) as e:
        parse_publish(["80", spec])
    assert str(e.value) == message


def test_expose_takes_ports_protocols_and_ranges_once_each():
    assert parse_expose(["80", "80/udp", "8000-8002", "80/tcp"]) == [
        "80/tcp", "80/udp", "8000/tcp", "8001/tcp", "8002/tcp"]


@pytest.mark.parametrize("spec, message", [
    ("80:80", "invalid port format for --expose: 80:80"),
    ("abc", 'invalid range format for --expose: abc, error: strconv.ParseUint: parsing "abc": '
            "invalid syntax"),
    ("90-80", "invalid range format for --expose: 90-80, error: Invalid range specified for "
              "the Port: 90-80"),
    ("70000", 'invalid range format for --expose: 70000, error: strconv.ParseUint: parsing '
              '"70000": value out of range'),
    ("80/xyz", "Invalid proto: xyz"),
])
def test_a_bad_expose_gets_dockers_message(spec, message):
    with pytest.raises(InvalidArgument) as e:
        parse_expose([spec])
    assert str(e.value) == message


def test_port_bindings_round_trip_through_dockers_hostconfig_shape():
    requests = parse_publish(["127.0.0.1:8080:80", "8000-8010:81", "82/udp", "9090:80"])
    shape = to_port_bindings(requests)
    assert shape == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"},
                                {"HostIp": "", "HostPort": "9090"}],
                     "81/tcp": [{"HostIp": "", "HostPort": "8000-8010"}],
                     "82/udp": [{"HostIp": "", "HostPort": ""}]}
    assert sorted(from_port_bindings(shape)) == sorted(requests)
    # the API may send an empty list or null HostIp: one dynamic port on all addresses
    assert from_port_bindings({"80/tcp": [], "81/tcp": [{"HostIp": None, "HostPort": None}]}) \
        == [R("", 0, 0, 80, "tcp"), R("", 0, 0, 81, "tcp")]


@pytest.mark.parametrize("bindings, message", [
    ({"abc/tcp": []}, 'invalid port specification: "abc"'),
    ({"80/tcp": [{"HostPort": "x"}]}, 'invalid port specification: "x"'),
    ({"80/tcp": [{"HostIp": "1.2.3", "HostPort": "80"}]}, "Invalid ip address: 1.2.3"),
])
def test_bad_port_bindings_from_the_api_are_refused(bindings, message):
    with pytest.raises(InvalidArgument) as e:
        from_port_bindings(bindings)
    assert str(e.value) == message


def test_publish_all_asks_a_free_port_for_every_exposed_port():
    assert publish_all(["80/tcp", "53/udp"]) == [R("", 0, 0, 80, "tcp"), R("", 0, 0, 53, "udp")]


def test_the_ephemeral_range_is_the_kernels(tmp_path):
    path = tmp_path / "range"
    path.write_text("40000\t40010\n")
    assert local_port_range(str(path)) == (40000, 40010)
    low, high = local_port_range()
    assert 0 < low < high <= 65535


@pytest.mark.parametrize("a, b, same", [
    ("", "127.0.0.1", True), ("127.0.0.1", "127.0.0.1", True), ("127.0.0.1", "127.0.0.2", False),
    ("0.0.0.0", "10.0.0.1", True), ("::1", "0.0.0.0", False), ("::1", "", True),
    ("::", "::1", True), ("0.0.0.0", "::", False),
])
def test_bindings_overlap_where_their_addresses_meet(a, b, same):
    assert overlaps(PortBinding(a, 80, 1, "tcp"), PortBinding(b, 80, 2, "tcp")) is same
    assert not overlaps(PortBinding(a, 80, 1, "tcp"), PortBinding(b, 80, 1, "udp"))
    assert not overlaps(PortBinding(a, 80, 1, "tcp"), PortBinding(b, 81, 1, "tcp"))


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_port_kade_already_published_is_refused_with_dockers_message():
    port = _unused_port()
    taken = [PortBinding("", port, 81, "tcp")]
    with pytest.raises(Conflict) as e:
        allocate([R("", port, port, 80, "tcp")], taken)
    assert str(e.value) == f"Bind for 0.0.0.0:{port} failed: port is already allocated"
    with pytest.raises(Conflict) as e:
        check_free(PortBinding("127.0.0.1", port, 80, "tcp"), taken)
    assert str(e.value) == f"Bind for 127.0.0.1:{port} failed: port is already allocated"
    assert allocate([R("", port, port, 80, "udp")], taken) == [PortBinding("", port, 80, "udp")]


@pytest.mark.parametrize("proto, kind", [("tcp", socket.SOCK_STREAM), ("udp", socket.SOCK_DGRAM)])
def test_a_port_another_program_holds_is_refused(proto, kind):
    with socket.socket(socket.AF_INET, kind) as holder:
        holder.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(Conflict) as e:
            check_free(PortBinding("", port, 80, proto))
        assert str(e.value) == f"Bind for 0.0.0.0:{port} failed: port is already allocated"
    check_free(PortBinding("", port, 80, proto))  # free again once it is closed


def test_a_closed_connection_in_time_wait_does_not_hold_the_port():
    """A server that set SO_REUSEADDR (as servers do) and is gone leaves TIME_WAIT
    sockets behind: they must not count, so the check binds with SO_REUSEADDR too."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = server.accept()
        conn.close()  # the server's side closes first: its side waits in TIME_WAIT
        client.close()
    check_free(PortBinding("", port, 80, "tcp"))


def test_a_host_ip_that_is_not_the_hosts_is_refused():
    with pytest.raises(InvalidArgument) as e:
        check_free(PortBinding("192.0.2.1", 8080, 80, "tcp"))
    assert str(e.value) == "listen tcp4 192.0.2.1:8080: bind: cannot assign requested address"


def test_dynamic_ports_skip_what_is_taken_and_do_not_collide_with_each_other():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        low = busy - 1
        taken = [PortBinding("", low, 1, "tcp")]
        got = allocate([R("", 0, 0, 80, "tcp"), R("", 0, 0, 81, "tcp")], taken,
                       port_range=(low, low + 50))
    ports = [b.host_port for b in got]
    assert low not in ports and busy not in ports and ports[0] != ports[1]
    assert all(low < p <= low + 50 for p in ports)
    assert [(b.container_port, b.proto) for b in got] == [(80, "tcp"), (81, "tcp")]


def _two_unused_ports() -> int:
    """p such that p and p+1 are both free here now."""
    while True:
        port = _unused_port()
        try:
            check_free(PortBinding("", port + 1, 1, "tcp"))
            return port
        except Conflict:
            continue


def test_a_host_range_takes_a_free_port_of_it_or_fails():
    port = _two_unused_ports()
    taken = [PortBinding("", port, 1, "tcp")]
    assert allocate([R("", port, port + 1, 80, "tcp")], taken) == [
        PortBinding("", port + 1, 80, "tcp")]
    with pytest.raises(Conflict) as e:
        allocate([R("", port, port + 1, 80, "tcp")], taken + [PortBinding("", port + 1, 2, "tcp")])
    assert str(e.value) == f"Bind for 0.0.0.0:{port}-{port + 1} failed: port is already allocated"


def test_parsing_imports_nothing_heavy():
    code = ("import sys\nfrom kade.network import ports\n"
            "ports.parse_publish(['127.0.0.1:8080:80/udp']); ports.parse_expose(['80'])\n"
            "print(sorted(m for m in ('re', 'json', 'typing', 'socket', 'ctypes', 'ipaddress')"
            " if m in sys.modules))")
    # -S: no site, so the editable install's path is not read; name the package's home
    src = os.path.dirname(os.path.dirname(os.path.dirname(ports.__file__)))
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": src})
    # ipaddress only for a literal address; none of the others
    assert out.stdout.strip() == "['ipaddress']"
