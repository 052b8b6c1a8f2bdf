"""Published ports: docker's `-p`/`--expose`/`-P` grammar and host port allocation.

    parse_publish(["127.0.0.1:8080:80", "8000-8010:53/udp"]) -> [PortRequest, ...]
    parse_expose(["80", "8000-8001/udp"]) -> ["80/tcp", "8000/udp", "8001/udp"]
    publish_all(exposed) -> a PortRequest per exposed port, host port left to allocate
    allocate(requests, taken) -> [PortBinding, ...]   every host port fixed and free

The grammar and its error messages are docker 20.10's: the CLI's
convertToStandardNotation, then go-connections v0.4.0's nat.ParsePortSpec (which
docker 20.10 vendors, so its messages are still capitalised: `Invalid containerPort:
foo`). A PortRequest is what the user asked for (host port 0 = any free port; a host
range with one container port = any free port of that range, as docker picks one);
a PortBinding is what the kernel rules publish. Dynamic host ports come from the
kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range), as docker's port
allocator takes them. Kade holds no socket per published port, so `check_free` asks
the kernel whether anything else has the port bound before the rules go in.

Lean on purpose (no re, no typing, socket only when a port is checked): the CLI may
parse `-p` on `kade run`'s path.
"""

from __future__ import annotations

from kade.errors import Conflict, InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import NamedTuple
else:
    from kade.util.namedtuple import NamedTuple

PROTOCOLS = ("tcp", "udp", "sctp")
_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"


class PortBinding(NamedTuple):
    """One published port, as the kernel rules carry it."""
    host_ip: str          # "" = all addresses (0.0.0.0 and ::)
    host_port: int
    container_port: int
    proto: str            # "tcp" | "udp" | "sctp"


class PortRequest(NamedTuple):
    """One `-p` mapping before allocation: host ports host_port..host_port_end, any
    one of them (equal for a fixed port; 0..0 for any free port)."""
    host_ip: str
    host_port: int
    host_port_end: int
    container_port: int
    proto: str

    def host_port_spec(self) -> str:
        """HostConfig.PortBindings' HostPort string: "", "8080" or "8000-8010"."""
        if not self.host_port:
            return ""
        if self.host_port_end != self.host_port:
            return f"{self.host_port}-{self.host_port_end}"
        return str(self.host_port)


# --- docker's parsing ------------------------------------------------------------------


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _parse_uint16(text: str) -> int:
    """strconv.ParseUint(text, 10, 16), with Go's error text."""
    if not text or not text.isascii() or not text.isdigit():
        raise ValueError(f"strconv.ParseUint: parsing {_go_quote(text)}: invalid syntax")
    value = int(text)
    if value > 65535:
        raise ValueError(f"strconv.ParseUint: parsing {_go_quote(text)}: value out of range")
    return value


def parse_port_range(text: str) -> tuple[int, int]:
    """nat.ParsePortRange: "80" or "8000-8010" (a third part is ignored, as in Go)."""
    if text == "":
        raise ValueError("Empty string specified for ports.")
    if "-" not in text:
        port = _parse_uint16(text)
        return port, port
    parts = text.split("-")
    start, end = _parse_uint16(parts[0]), _parse_uint16(parts[1])
    if end < start:
        raise ValueError(f"Invalid range specified for the Port: {text}")
    return start, end


def split_proto_port(raw: str) -> tuple[str, str]:
    """nat.SplitProtoPort: "80/udp" -> ("udp", "80"); "80" -> ("tcp", "80")."""
    parts = raw.split("/")
    if not raw or not parts[0]:
        return "", ""
    if len(parts) == 1 or not parts[1]:
        return "tcp", parts[0]
    return parts[1], parts[0]


def _split_parts(raw: str) -> tuple[str, str, str]:
    parts = raw.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def _split_host(raw_ip: str) -> str:
    """net.SplitHostPort(raw_ip + ":")'s host: strips [] from an IPv6 address."""
    address = raw_ip + ":"
    if raw_ip.startswith("["):
        end = raw_ip.find("]")
        if end < 0:
            raise ValueError(f"address {address}: missing ']' in address")
        if end != len(raw_ip) - 1:
            raise ValueError(f"address {address}: missing port in address")
        host = raw_ip[1:end]
        if "[" in host or "]" in host:
            raise ValueError(f"address {address}: unexpected '[' in address")
        return host
    if ":" in raw_ip:
        raise ValueError(f"address {address}: too many colons in address")
    if "[" in raw_ip:
        raise ValueError(f"address {address}: unexpected '[' in address")
    if "]" in raw_ip:
        raise ValueError(f"address {address}: unexpected ']' in address")
    return raw_ip


def is_ip(text: str) -> bool:
    """net.ParseIP(text) != nil: dotted quad or IPv6 (no zone, no prefix)."""
    if "%" in text or "/" in text or not text.isascii():
        return False
    import ipaddress
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse_spec(raw: str) -> list[PortRequest]:
    """nat.ParsePortSpec: `[ip:][hostPort:]containerPort[/proto]`, one request per
    container port (a container range maps onto an equally long host range)."""
    raw_ip, host_port, container_port = _split_parts(raw)
    proto, container_port = split_proto_port(container_port)
    try:
        ip = _split_host(raw_ip)
    except ValueError as e:
        raise InvalidArgument(f"Invalid ip address {raw_ip}: {e}") from None
    if ip and not is_ip(ip):
        raise InvalidArgument(f"Invalid ip address: {ip}")
    if not container_port:
        raise InvalidArgument(f"No port specified: {raw}<empty>")
    try:
        start, end = parse_port_range(container_port)
    except ValueError:
        raise InvalidArgument(f"Invalid containerPort: {container_port}") from None
    host_start = host_end = 0
    if host_port:
        try:
            host_start, host_end = parse_port_range(host_port)
        except ValueError:
            raise InvalidArgument(f"Invalid hostPort: {host_port}") from None
        if end - start != host_end - host_start and end != start:
            raise InvalidArgument("Invalid ranges specified for container and host Ports: "
                                  f"{container_port} and {host_port}")
    if proto.lower() not in PROTOCOLS:
        raise InvalidArgument(f"Invalid proto: {proto}")
    proto = proto.lower()
    if start == end:  # one container port: the host range (if any) is a choice
        return [PortRequest(ip, host_start, host_end, start, proto)]
    return [PortRequest(ip, host_start + i if host_port else 0, host_start + i if host_port else 0,
                        start + i, proto) for i in range(end - start + 1)]


def _standard_notation(spec: str) -> str:
    """The CLI's convertToStandardNotation: `published=8080,target=80,protocol=udp`."""
    if "=" not in spec:
        return spec
    params = {"protocol": "tcp"}
    for param in spec.split(","):
        opt = param.split("=")
        if len(opt) < 2:
            raise InvalidArgument("invalid publish opts format (should be name=value but got "
                                  f"'{param}')")
        params[opt[0]] = opt[1]
    return f"{params.get('published', '')}:{params.get('target', '')}/{params['protocol']}"


def parse_publish(specs: Iterable[str]) -> list[PortRequest]:
    """Every `-p` value of a run/create, in order; the first bad one raises."""
    return [req for spec in specs for req in parse_spec(_standard_notation(spec))]


def parse_expose(specs: Iterable[str]) -> list[str]:
    """`--expose 80`, `80/udp`, `8000-8010`: docker's "80/tcp" keys, in order, once each.

    Unlike docker 20.10 (which stores any protocol and fails later), an unknown
    protocol is refused here with nat's `Invalid proto` message."""
    ports: dict[str, None] = {}
    for spec in specs:
        if ":" in spec:
            raise InvalidArgument(f"invalid port format for --expose: {spec}")
        proto, port = split_proto_port(spec)
        try:
            start, end = parse_port_range(port)
        except ValueError as e:
            raise InvalidArgument(f"invalid range format for --expose: {spec}, error: {e}") \
                from None
        if proto.lower() not in PROTOCOLS:
            raise InvalidArgument(f"Invalid proto: {proto}")
        for number in range(start, end + 1):
            ports[f"{number}/{proto.lower()}"] = None
    return list(ports)


def exposed_ports(requests: Iterable[PortRequest]) -> list[str]:
    """The "80/tcp" keys of Config.ExposedPorts that `-p` adds, in order."""
    return list({f"{r.container_port}/{r.proto}": None for r in requests})


def to_port_bindings(requests: Iterable[PortRequest]) -> dict[str, list[dict[str, str]]]:
    """HostConfig.PortBindings as docker stores and shows it."""
    bindings: dict[str, list[dict[str, str]]] = {}
    for r in requests:
        bindings.setdefault(f"{r.container_port}/{r.proto}", []).append(
            {"HostIp": r.host_ip, "HostPort": r.host_port_spec()})
    return bindings


def from_port_bindings(bindings: dict) -> list[PortRequest]:
    """HostConfig.PortBindings (from the API or the store) back to requests, checked
    as docker's daemon checks them (`invalid port specification: "..."`)."""
    requests = []
    for key, entries in bindings.items():
        proto, port = split_proto_port(key)
        try:
            container_port = _parse_uint16(port)
        except ValueError:
            raise InvalidArgument(f"invalid port specification: {_go_quote(port)}") from None
        if proto.lower() not in PROTOCOLS:
            raise InvalidArgument(f"Invalid proto: {proto}")
        for entry in entries or [{}]:
            requests.append(_request_from_entry(entry or {}, container_port, proto.lower()))
    return requests


def _request_from_entry(entry: dict, container_port: int, proto: str) -> PortRequest:
    host_ip, host_port = entry.get("HostIp") or "", entry.get("HostPort") or ""
    if host_ip and not is_ip(host_ip):
        raise InvalidArgument(f"Invalid ip address: {host_ip}")
    start = end = 0
    if host_port:
        try:
            start, end = parse_port_range(split_proto_port(host_port)[1])
        except ValueError:
            raise InvalidArgument(f"invalid port specification: {_go_quote(host_port)}") \
                from None
    return PortRequest(host_ip, start, end, container_port, proto)


def publish_all(exposed: Iterable[str], host_ip: str = "") -> list[PortRequest]:
    """`-P`: every exposed port ("80/tcp") to a free host port."""
    requests = []
    for key in exposed:
        proto, port = split_proto_port(key)
        if proto in PROTOCOLS:
            requests.append(PortRequest(host_ip, 0, 0, _parse_uint16(port), proto))
    return requests


# --- allocation --------------------------------------------------------------------------


def local_port_range(path: str = _RANGE_FILE) -> tuple[int, int]:
    """The kernel's ephemeral port range, docker's range for dynamic host ports."""
    try:
        with open(path) as f:
            low, high = (int(n) for n in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999  # docker's fallback is the kernel's default


def display_ip(host_ip: str) -> str:
    return host_ip or "0.0.0.0"


def _already_allocated(binding: PortBinding) -> Conflict:
    return Conflict(f"Bind for {display_ip(binding.host_ip)}:{binding.host_port} failed: "
                    "port is already allocated")


def _families(host_ip: str) -> dict[int, str]:
    """{4: address, 6: address} that a host_ip covers ("" covers both wildcards)."""
    if not host_ip:
        return {4: "0.0.0.0", 6: "::"}
    return {6 if ":" in host_ip else 4: host_ip}


def overlaps(a: PortBinding, b: PortBinding) -> bool:
    """Whether two bindings claim one host port: same protocol and port, and an address
    in common (a wildcard covers its family)."""
    if a.proto != b.proto or a.host_port != b.host_port:
        return False
    fa, fb = _families(a.host_ip), _families(b.host_ip)
    return any(fam in fb and (addr in ("0.0.0.0", "::") or fb[fam] in ("0.0.0.0", "::")
                              or addr == fb[fam]) for fam, addr in fa.items())


def check_free(binding: PortBinding, taken: Iterable[PortBinding] = ()) -> None:
    """Raise docker's Conflict when Kade's store (`taken`) or any socket on the host
    already has this host port; `listen ...: cannot assign requested address` when
    host_ip is not an address of this host."""
    if any(overlaps(binding, other) for other in taken):
        raise _already_allocated(binding)
    for family, address in _families(binding.host_ip).items():
        _probe_bind(binding, family, address, explicit=bool(binding.host_ip))


def _probe_bind(binding: PortBinding, family: int, address: str, *, explicit: bool) -> None:
    """Bind a socket where the rules will catch traffic: EADDRINUSE means another
    socket holds the port (TIME_WAIT leftovers do not count: SO_REUSEADDR on TCP)."""
    import errno
    import socket
    af = socket.AF_INET6 if family == 6 else socket.AF_INET
    kind, protocol = {"tcp": (socket.SOCK_STREAM, 0), "udp": (socket.SOCK_DGRAM, 0),
                      "sctp": (socket.SOCK_STREAM, socket.IPPROTO_SCTP)}[binding.proto]
    try:
        sock = socket.socket(af, kind, protocol)
    except OSError:
        if explicit and family == 6 and binding.proto != "sctp":
            raise InvalidArgument(f"cannot publish on {binding.host_ip}: this host has no "
                                  "IPv6") from None
        return  # no such family or protocol here: nothing can hold the port either
    with sock:
        if af == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, binding.host_port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise _already_allocated(binding) from None
            if e.errno == errno.EADDRNOTAVAIL and explicit:
                where = f"[{address}]" if family == 6 else address
                raise InvalidArgument(f"listen {binding.proto}{family} {where}:"
                                      f"{binding.host_port}: bind: cannot assign requested "
                                      "address") from None
            if explicit or e.errno != errno.EADDRNOTAVAIL:
                raise


def allocate(bindings: Iterable[PortRequest], taken: Iterable[PortBinding] = (),
             port_range: tuple[int, int] | None = None) -> list[PortBinding]:
    """Fix every request's host port: a fixed one must be free (else docker's Conflict);
    a range or 0 takes the first free port of the range or of the ephemeral range.
    Ports given out here count as taken for the requests after them."""
    used = list(taken)
    result = []
    for req in bindings:
        binding = _allocate_one(req, used, port_range)
        used.append(binding)
        result.append(binding)
    return result


def _allocate_one(req: PortRequest, used: list[PortBinding],
                  port_range: tuple[int, int] | None) -> PortBinding:
    if req.host_port and req.host_port == req.host_port_end:
        binding = PortBinding(req.host_ip, req.host_port, req.container_port, req.proto)
        check_free(binding, used)
        return binding
    low, high = ((req.host_port, req.host_port_end) if req.host_port
                 else port_range or local_port_range())
    for port in range(low, high + 1):
        binding = PortBinding(req.host_ip, port, req.container_port, req.proto)
        try:
            check_free(binding, used)
        except Conflict:
            continue
        return binding
    if req.host_port:
        raise Conflict(f"Bind for {display_ip(req.host_ip)}:{low}-{high} failed: "
                       "port is already allocated")
    raise Conflict("all ports are allocated")
