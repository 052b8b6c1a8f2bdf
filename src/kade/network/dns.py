"""The embedded DNS server: docker's 127.0.0.11, answering inside each container on a
user network (behaviour of moby's libnetwork/resolver.go and sandbox name resolution).

One server serves every container. For each attached container it holds a UDP and a
TCP socket bound to 127.0.0.11:<ephemeral> *inside the container's network namespace*
(a short-lived thread setns-es there, makes them and exits; a socket keeps the namespace
it was made in); the firewall DNATs the container's 127.0.0.11:53 to those ports. One
thread waits on all sockets with epoll, so a slow upstream delays no other query.

What it answers, from the view of the networks the asking container is on:
- A / AAAA for a record's names (container name, aliases, short id, service name),
  case-insensitive, also spelt `NAME.NETWORK`; every matching address (all replicas of
  a service), rotated round robin per name; TTL 600. A known name without an address
  of the asked family answers NOERROR with no records (docker's "ipv6Miss"), so a v6
  lookup of a v4-only container is not leaked to the host's resolvers.
- PTR for the records' addresses: `NAME.NETWORK.` (the record's first name).
- MX for a known name: NOERROR, empty ("implicit MX", RFC 5321).
- Anything else is forwarded, byte for byte and over the protocol it came in on, to the
  upstreams (at most 3, tried in order, 4 s each) from the server's own (the host's)
  network namespace, so loopback resolvers such as 127.0.0.53 work. SERVFAIL, REFUSED,
  other errors and a non-authoritative NXDOMAIN move on to the next upstream; the last
  answer received is passed through; no answer at all (or no upstream) is SERVFAIL.
  A truncated upstream answer goes back truncated, and the client retries over TCP.
- Our own UDP answers fit max(512, the query's EDNS size); beyond it, answers are
  dropped and TC set, as docker does.

Malformed queries get FORMERR when their header can be read; other opcodes NOTIMP;
responses (QR set) are ignored, so no two resolvers can loop.

dnspython is imported on the first query, not with this module.
"""

from __future__ import annotations

import errno
import heapq
import ipaddress
import itertools
import os
import selectors
import socket
import struct
import threading
import time

from kade.errors import InvalidArgument, Unavailable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, NamedTuple
else:
    from kade.util.namedtuple import NamedTuple

RESOLVER_IP = "127.0.0.11"
TTL = 600
MAX_UPSTREAMS = 3          # docker's maxExtDNS
UPSTREAM_TIMEOUT = 4.0     # docker's extIOTimeout, per upstream
MAX_FORWARDS = 1024        # docker's maxConcurrent: beyond it, SERVFAIL at once
TCP_IDLE = 10.0            # a TCP client idle this long (nothing pending) is closed
DEFAULT_UPSTREAMS = ("8.8.8.8", "8.8.4.4")  # docker's, when the host names none
OUR_PAYLOAD = 1232         # the EDNS UDP size we announce (DNS flag day 2020)
_A, _PTR, _MX, _AAAA = 1, 12, 15, 28
_RCODE_NOERROR, _RCODE_FORMERR, _RCODE_SERVFAIL = 0, 1, 2
_RCODE_NXDOMAIN, _RCODE_NOTIMP, _RCODE_REFUSED = 3, 4, 5


class Record(NamedTuple):
    """One container's (or replica's) entry on one network."""
    names: tuple[str, ...]     # container name first (PTR answers with it), then aliases
    ipv4: str | None
    ipv6: str | None


# ---- upstreams ---------------------------------------------------------------------------

def parse_upstream(text: str) -> tuple[str, int]:
    """'1.2.3.4', '1.2.3.4:5353', '::1', '[::1]:5353' -> (address, port)."""
    host, port = text.strip(), 53
    if host.startswith("["):
        host, sep, rest = host[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise InvalidArgument(f'invalid dns server address "{text}"')
        port = _port(rest[1:], text) if rest else 53
    elif host.count(":") == 1:
        host, _, rest = host.partition(":")
        port = _port(rest, text)
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        raise InvalidArgument(f'invalid dns server address "{text}"') from None
    return host, port


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise InvalidArgument(f'invalid dns server address "{whole}"')
    return int(text)


def host_nameservers(path: str = "/etc/resolv.conf") -> list[str]:
    """The host's resolvers, loopback ones included (they are reached from the host's
    namespace); docker's defaults when the file names none."""
    found = []
    try:
        with open(path) as f:
            for line in f:
                words = line.split()
                if len(words) >= 2 and words[0] == "nameserver":
                    found.append(words[1])
    except OSError:
        pass
    return found or list(DEFAULT_UPSTREAMS)


def _host_upstreams() -> list[tuple[str, int]]:
    found = []
    for text in host_nameservers():
        try:
            found.append(parse_upstream(text))
        except InvalidArgument:  # a line the host's own resolver ignores as well
            continue
    return found


# ---- the records of each network ---------------------------------------------------------

class _Network:
    """One network's records, indexed for lookups; replaced whole, never mutated, so the
    server thread can read it while another thread sets a new one."""

    def __init__(self, name: str | None, records: list[Record]) -> None:
        self.name = name.lower() if name else None
        self.by_name: dict[str, list[Record]] = {}
        self.by_ptr: dict[str, str] = {}
        for rec in records:
            rec = Record(tuple(n.lower().rstrip(".") for n in rec.names),
                         _normal_ip(rec.ipv4, 4), _normal_ip(rec.ipv6, 6))
            for n in dict.fromkeys(rec.names):
                self.by_name.setdefault(n, []).append(rec)
            target = rec.names[0] + (f".{self.name}" if self.name else "") + "."
            for ip in (rec.ipv4, rec.ipv6):
                if ip and rec.names:
                    self.by_ptr.setdefault(ipaddress.ip_address(ip).reverse_pointer + ".", target)


def _normal_ip(ip: str | None, version: int) -> str | None:
    if not ip:
        return None
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        addr = None
    if addr is None or addr.version != version:
        raise InvalidArgument(f'invalid ipv{version} address "{ip}" in a dns record')
    return str(addr)


def resolve(networks: list[_Network], name: str, family: int) -> list[str] | None:
    """Addresses of `name` (lower case, no trailing dot) of `family` (4 or 6) on the first
    network that knows it: [] if known without such an address, None if unknown.
    'a.b.c' is tried as 'a.b.c' on every network, then 'a.b' on network 'c', then 'a' on
    network 'b.c', as docker's sandbox does."""
    candidates = [(name, None)]
    dot = name.rfind(".")
    while dot > 0:
        candidates.append((name[:dot], name[dot + 1:]))
        dot = name.rfind(".", 0, dot)
    known = False
    for req, net_name in candidates:
        for net in networks:
            if net_name is not None and net.name != net_name:
                continue
            records = net.by_name.get(req)
            if not records:
                continue
            known = True
            addrs = [r.ipv4 if family == 4 else r.ipv6 for r in records]
            addrs = list(dict.fromkeys(a for a in addrs if a))
            if addrs:
                return addrs
        if known:
            return []
    return None


def resolve_ptr(networks: list[_Network], qname: str) -> str | None:
    for net in networks:
        target = net.by_ptr.get(qname)
        if target:
            return target
    return None


# ---- answering ---------------------------------------------------------------------------

class Answerer:
    """Turns a query's wire bytes into our own answer's wire bytes, or None when the
    query must be forwarded. Holds the round-robin counters; no sockets."""

    def __init__(self) -> None:
        import dns.exception
        import dns.flags
        import dns.message
        import dns.rdataclass
        import dns.rdatatype
        import dns.rrset
        self._dns = dns
        self._turns: dict[tuple[str, int], int] = {}

    def answer(self, wire: bytes, networks: list[_Network], udp: bool) -> bytes | None:
        """Our answer; b'' to send nothing; None to forward."""
        bad = _header_problem(wire)
        if bad is not None:
            return bad
        q = _plain_question(wire)
        if q is not None:
            name, qtype, qend, payload, edns = q
            if qtype in (_A, _AAAA):
                family = 4 if qtype == _A else 6
                addrs = resolve(networks, name, family)
                if addrs is None:
                    return None
                out = _address_reply(wire, qend, qtype, self._rotate(name, family, addrs),
                                     edns)
                if len(out) <= (max(512, payload) if udp else 65535):
                    return out
            elif qtype not in (_PTR, _MX):  # only those two need dnspython's look
                return None
        return self._parsed(wire, networks, udp)

    def _parsed(self, wire: bytes, networks: list[_Network], udp: bool) -> bytes | None:
        """The general path, with dnspython: PTR, MX, truncation, malformed queries."""
        dns = self._dns
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # dnspython raises many kinds for malformed input
            return _error_reply(wire, _RCODE_FORMERR)
        if len(query.question) != 1:
            return _error_reply(wire, _RCODE_FORMERR)
        resp = self._local(query, networks)
        if resp is None:
            return None
        limit = max(512, query.payload if query.edns >= 0 else 0) if udp else 65535
        return self._to_wire(resp, limit, udp)

    def _local(self, query, networks: list[_Network]):
        dns = self._dns
        q = query.question[0]
        if q.rdclass != dns.rdataclass.IN:
            return None
        name = q.name.to_text().lower().rstrip(".")
        if q.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            family = 4 if q.rdtype == dns.rdatatype.A else 6
            addrs = resolve(networks, name, family)
            if addrs is None:
                return None
            return self._reply(query, q.name, q.rdtype, self._rotate(name, family, addrs))
        if q.rdtype == dns.rdatatype.PTR:
            target = resolve_ptr(networks, name + ".")
            return None if target is None else self._reply(query, q.name, q.rdtype, [target])
        if q.rdtype == dns.rdatatype.MX:
            known = resolve(networks, name, 4) is not None
            return self._reply(query, q.name, q.rdtype, []) if known else None
        return None

    def _rotate(self, name: str, family: int, addrs: list[str]) -> list[str]:
        if len(addrs) < 2:
            return addrs
        if len(self._turns) > 4096:
            self._turns.clear()
        turn = self._turns.get((name, family), 0)
        self._turns[(name, family)] = turn + 1
        k = turn % len(addrs)
        return addrs[k:] + addrs[:k]

    def _reply(self, query, qname, rdtype, values: list[str]):
        dns = self._dns
        resp = dns.message.make_response(query, our_payload=OUR_PAYLOAD)
        resp.flags |= dns.flags.RA
        if values:
            resp.answer.append(dns.rrset.from_text_list(qname, TTL, dns.rdataclass.IN,
                                                        rdtype, values))
        return resp

    def _to_wire(self, resp, limit: int, udp: bool) -> bytes:
        # want_shuffle=False: dnspython shuffles records by default; ours rotate instead
        dns = self._dns
        try:
            return resp.to_wire(max_size=limit, want_shuffle=False)
        except dns.exception.TooBig:
            pass
        rrset = resp.answer[0]
        items = list(rrset)
        while items:  # drop answers one by one until the rest fits, as docker does
            items.pop()
            resp.answer = [dns.rrset.from_rdata_list(rrset.name, rrset.ttl, items)] if items else []
            if udp:
                resp.flags |= dns.flags.TC
            try:
                return resp.to_wire(max_size=limit, want_shuffle=False)
            except dns.exception.TooBig:
                continue
        return resp.to_wire(max_size=limit, want_shuffle=False)


def _plain_question(wire: bytes) -> tuple[str, int, int, int, bool] | None:
    """(name in lower case, qtype, end of the question, EDNS payload, EDNS present) of a
    plain IN query with one question and at most an EDNS0 OPT record; None for anything
    else, which takes the general path."""
    qd, an, ns, ar = struct.unpack_from("!HHHH", wire, 4)
    if qd != 1 or an or ns or ar > 1:
        return None
    labels, i, size = [], 12, len(wire)
    while i < size and wire[i]:
        n = wire[i]
        label = wire[i + 1:i + 1 + n]
        if n & 0xC0 or len(label) != n or b"." in label or not label.isascii():
            return None
        labels.append(label)
        i += n + 1
    if i + 5 > size:
        return None
    qtype, qclass = struct.unpack_from("!HH", wire, i + 1)
    qend = i + 5
    if qclass != 1:
        return None
    name = b".".join(labels).lower().decode()
    if not ar:
        return (name, qtype, qend, 0, False) if qend == size else None
    if qend + 11 > size or wire[qend] != 0:
        return None
    rtype, payload, _rcode, version, _flags, rdlen = struct.unpack_from("!HHBBHH", wire, qend + 1)
    if rtype != 41 or version != 0 or qend + 11 + rdlen != size:
        return None
    return name, qtype, qend, payload, True


def _address_reply(wire: bytes, qend: int, qtype: int, addrs: list[str], edns: bool) -> bytes:
    """The answer to a plain A/AAAA query: the question as asked, each address under a
    pointer to it, and an OPT record when the query had one."""
    flags = 0x8000 | (wire[2] & 0x01) << 8 | 0x80  # QR, RD as asked, RA
    head = wire[:2] + struct.pack("!HHHHH", flags, 1, len(addrs), 0, int(edns))
    af, size = (socket.AF_INET, 4) if qtype == _A else (socket.AF_INET6, 16)
    rrs = b"".join(struct.pack("!HHHIH", 0xC00C, qtype, 1, TTL, size) + socket.inet_pton(af, a)
                   for a in addrs)
    opt = b"\x00" + struct.pack("!HHIH", 41, OUR_PAYLOAD, 0, 0) if edns else b""
    return head + wire[12:qend] + rrs + opt


def _header_problem(wire: bytes) -> bytes | None:
    """None when the header is a plain query; b'' to drop the message silently; else
    the error reply to send."""
    if len(wire) < 12:
        return b""
    flags = wire[2]
    if flags & 0x80:  # QR: a response, never answered
        return b""
    if (flags >> 3) & 0x0F != 0:  # opcode other than QUERY
        return _error_reply(wire, _RCODE_NOTIMP)
    return None


def _error_reply(wire: bytes, rcode: int) -> bytes:
    """A header-only reply: same id, QR, the query's opcode and RD, RA, the rcode."""
    flags = 0x8000 | (wire[2] & 0x79) << 8 | 0x80 | rcode
    return wire[:2] + struct.pack("!HHHHH", flags, 0, 0, 0, 0)


def servfail(wire: bytes) -> bytes:
    """SERVFAIL echoing the query's question (when it can be parsed), as clients match
    answers by question too."""
    qend = _question_end(wire)
    if qend is None:
        return _error_reply(wire, _RCODE_SERVFAIL)
    flags = 0x8000 | (wire[2] & 0x79) << 8 | 0x80 | _RCODE_SERVFAIL
    return wire[:2] + struct.pack("!HHHHH", flags, 1, 0, 0, 0) + wire[12:qend]


def _question_end(wire: bytes) -> int | None:
    if len(wire) < 12 or struct.unpack_from("!H", wire, 4)[0] != 1:
        return None
    i = 12
    while i < len(wire) and wire[i]:
        if wire[i] & 0xC0:
            return None
        i += wire[i] + 1
    i += 5
    return i if i <= len(wire) else None


# ---- namespaces ----------------------------------------------------------------------------

def open_in_netns(netns_fd: int) -> tuple[socket.socket, socket.socket]:
    """A UDP and a listening TCP socket on 127.0.0.11:0 in the namespace of `netns_fd`
    (lo brought up there first). The work runs in a thread of its own that ends there
    (netlink.run_in_netns), so no thread of ours is ever left in a container's namespace."""
    from kade.network import netlink

    def work() -> tuple[socket.socket, socket.socket]:
        netlink.lo_up_here()
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            udp.bind((RESOLVER_IP, 0))
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((RESOLVER_IP, 0))
            tcp.listen(128)
        except OSError:
            udp.close()
            tcp.close()
            raise
        return udp, tcp

    try:
        return netlink.run_in_netns(netns_fd, work)
    except OSError as e:
        raise Unavailable("cannot open the embedded dns server in the container's network "
                          f"namespace: {e.strerror or e}") from None


# ---- the server ----------------------------------------------------------------------------

class _Attachment:
    def __init__(self, key: str, udp: socket.socket, tcp: socket.socket,
                 network_ids: list[str], upstreams: list[tuple[str, int]]) -> None:
        self.key, self.udp, self.tcp = key, udp, tcp
        self.network_ids = list(network_ids)
        self.upstreams = upstreams
        self.clients: set[_TcpClient] = set()


class DNSServer:
    """See the module docstring. Every public method may be called from any thread;
    sockets are registered, read and closed only by the server's own thread."""

    def __init__(self, upstreams: list[str] | None = None, *,
                 timeout: float = UPSTREAM_TIMEOUT) -> None:
        # None: the host's /etc/resolv.conf, read again at each attach (it may change)
        self._upstreams = None if upstreams is None else [parse_upstream(u) for u in upstreams]
        self.timeout = timeout
        self._networks: dict[str, _Network] = {}
        self._attachments: dict[str, _Attachment] = {}
        self._sel = selectors.DefaultSelector()
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._sel.register(self._wake, selectors.EVENT_READ, self._drain_wake)
        self._calls: list[Callable[[], None]] = []
        self._calls_lock = threading.Lock()
        self._timers: list = []
        self._seq = itertools.count()
        self._forwards = 0
        self._answerer: Answerer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- records
    def set_network(self, network_id: str, records: list[Record], *,
                    name: str | None = None) -> None:
        """Replace a network's records. `name` (the network's name) makes NAME.NETWORK
        resolve and is the domain of PTR answers, as docker's."""
        self._networks[network_id] = _Network(name, records)

    def drop_network(self, network_id: str) -> None:
        self._networks.pop(network_id, None)

    # -- containers
    def attach(self, key: str, netns_fd: int, network_ids: list[str], *,
               upstreams: list[str] | None = None) -> tuple[int, int]:
        """Serve the container `key` in the namespace of `netns_fd`; returns the (udp, tcp)
        ports to DNAT 127.0.0.11:53 to. `upstreams` overrides the server's (`--dns`)."""
        if self._stopping:
            raise Unavailable("the embedded dns server is stopped")
        if upstreams is not None:
            own = [parse_upstream(u) for u in upstreams]
        elif self._upstreams is not None:
            own = self._upstreams
        else:  # docker reads the host's resolvers when the container's sandbox is made
            own = _host_upstreams()
        udp, tcp = open_in_netns(netns_fd)
        return self.attach_sockets(key, udp, tcp, network_ids, own)

    def attach_sockets(self, key: str, udp: socket.socket, tcp: socket.socket,
                       network_ids: list[str], upstreams: list[tuple[str, int]]
                       ) -> tuple[int, int]:
        """Serve `key` on sockets made elsewhere (a bound UDP socket, a listening TCP one;
        the server owns them from now on): attach's second half, and the seam unit tests
        and a rootless driver (whose server may live in the namespace) use."""
        udp.setblocking(False)
        tcp.setblocking(False)
        att = _Attachment(key, udp, tcp, network_ids, list(upstreams))
        ports = (udp.getsockname()[1], tcp.getsockname()[1])
        self._call(lambda: self._add(att))
        return ports

    def update(self, key: str, network_ids: list[str]) -> None:
        att = self._attachments.get(key)
        if att is not None:
            att.network_ids = list(network_ids)

    def detach(self, key: str) -> None:
        self._call(lambda: self._remove(key))

    # -- the thread
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="kade-dns", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._sel.get_map() is None:  # stopped already
            return
        self._stopping = True
        if self._thread is not None and self._thread.is_alive():
            os.eventfd_write(self._wake, 1)
            self._thread.join()
        self._run_calls()  # attachments that never reached the thread: closed by _add
        for key in list(self._attachments):
            self._remove(key)
        for key in list(self._sel.get_map().values()):
            if key.fileobj is not self._wake:
                key.fileobj.close()
        self._sel.close()
        os.close(self._wake)

    def _call(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the server's thread and wait for it (the thread never blocks, so
        the wait is short), or here when the thread is not running."""
        t = self._thread
        if t is None or not t.is_alive() or t is threading.current_thread():
            fn()
            return
        done = threading.Event()

        def call() -> None:
            try:
                fn()
            finally:
                done.set()
        with self._calls_lock:
            self._calls.append(call)
        os.eventfd_write(self._wake, 1)
        while not done.wait(1.0):
            if not t.is_alive():  # stopped meanwhile: stop() runs what is left
                break

    def _run_calls(self) -> None:
        with self._calls_lock:
            calls, self._calls = self._calls, []
        for fn in calls:
            _guarded(fn)

    def _drain_wake(self, _mask: int) -> None:
        try:
            os.eventfd_read(self._wake)
        except BlockingIOError:
            pass

    def _loop(self) -> None:
        while not self._stopping:
            for key, mask in self._sel.select(self._next_timeout()):
                _guarded(key.data, mask)
            self._run_calls()
            self._expire()

    def _add(self, att: _Attachment) -> None:
        if self._stopping:
            att.udp.close()
            att.tcp.close()
            return
        self._remove(att.key)
        self._attachments[att.key] = att
        self._sel.register(att.udp, selectors.EVENT_READ, lambda m: self._on_udp(att))
        self._sel.register(att.tcp, selectors.EVENT_READ, lambda m: self._on_accept(att))

    def _remove(self, key: str) -> None:
        att = self._attachments.pop(key, None)
        if att is None:
            return
        for s in (att.udp, att.tcp):
            self._unregister(s)
            s.close()
        for client in list(att.clients):
            client.close()

    def _unregister(self, sock: socket.socket) -> None:
        try:
            self._sel.unregister(sock)
        except (KeyError, ValueError):
            pass

    # -- timers: (deadline, seq, object); an entry is stale when the object has moved on
    def _at(self, deadline: float, obj) -> None:
        heapq.heappush(self._timers, (deadline, next(self._seq), obj))

    def _next_timeout(self) -> float | None:
        if not self._timers:
            return None
        return max(0.0, self._timers[0][0] - time.monotonic())

    def _expire(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            deadline, _, obj = heapq.heappop(self._timers)
            if obj.deadline == deadline:
                _guarded(obj.expire)

    # -- queries
    def _views(self, att: _Attachment) -> list[_Network]:
        nets = self._networks
        return [nets[i] for i in att.network_ids if i in nets]

    def _answer(self, wire: bytes, att: _Attachment, udp: bool) -> bytes | None:
        if self._answerer is None:
            self._answerer = Answerer()
        return self._answerer.answer(wire, self._views(att), udp)

    def _on_udp(self, att: _Attachment) -> None:
        for _ in range(64):  # a burst, then let other sockets have their turn
            try:
                wire, addr = att.udp.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue

            def reply(data: bytes, addr=addr) -> None:
                if not data:
                    return
                try:
                    att.udp.sendto(data, addr)
                except OSError:
                    pass
            self._handle(wire, att, reply, udp=True)

    def _handle(self, wire: bytes, att: _Attachment, reply, udp: bool) -> None:
        out = self._answer(wire, att, udp)
        if out is not None:
            reply(out)
        elif not att.upstreams or self._forwards >= MAX_FORWARDS:
            reply(servfail(wire))
        else:
            _Forward(self, wire, att.upstreams[:MAX_UPSTREAMS], reply, udp).next()

    def _on_accept(self, att: _Attachment) -> None:
        for _ in range(16):
            try:
                conn, _addr = att.tcp.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            conn.setblocking(False)
            _TcpClient(self, att, conn)


def _guarded(fn, *args) -> None:
    """Run one piece of the server's work: one bad packet or peer must not stop the
    server for every container."""
    try:
        fn(*args)
    except Exception:
        pass


class _TcpClient:
    """A DNS-over-TCP client: 2-byte length-prefixed messages both ways, possibly several
    in flight (RFC 7766), answered in the order they complete."""

    def __init__(self, server: DNSServer, att: _Attachment, conn: socket.socket) -> None:
        self.server, self.att, self.conn = server, att, conn
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.pending = 0
        self.closed = False
        self.deadline = 0.0
        att.clients.add(self)
        server._sel.register(conn, selectors.EVENT_READ, self.on_event)
        self.touch()

    def touch(self) -> None:
        self.deadline = time.monotonic() + TCP_IDLE
        self.server._at(self.deadline, self)

    def expire(self) -> None:
        if self.pending:
            self.touch()
        else:
            self.close()

    def on_event(self, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self.flush()
        if mask & selectors.EVENT_READ and not self.closed:
            self.read()

    def read(self) -> None:
        try:
            data = self.conn.recv(65537)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        self.touch()
        self.inbuf += data
        while len(self.inbuf) >= 2:
            size = struct.unpack_from("!H", self.inbuf)[0]
            if len(self.inbuf) < 2 + size:
                break
            wire = bytes(self.inbuf[2:2 + size])
            del self.inbuf[:2 + size]
            self.pending += 1
            self.server._handle(wire, self.att, self.send, udp=False)

    def send(self, data: bytes) -> None:
        self.pending -= 1
        if self.closed or not data:
            return
        self.outbuf += struct.pack("!H", len(data)) + data
        self.flush()

    def flush(self) -> None:
        try:
            while self.outbuf:
                sent = self.conn.send(self.outbuf)
                del self.outbuf[:sent]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self.close()
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.outbuf else 0)
        if self.server._sel.get_key(self.conn).events != events:
            self.server._sel.modify(self.conn, events, self.on_event)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.deadline = 0.0
        self.att.clients.discard(self)
        self.server._unregister(self.conn)
        self.conn.close()


class _Forward:
    """One query on its way through the upstreams, one at a time, from the server's own
    namespace; `reply` gets the answer to pass back, or SERVFAIL."""

    def __init__(self, server: DNSServer, wire: bytes, upstreams: list[tuple[str, int]],
                 reply, udp: bool) -> None:
        self.server, self.wire, self.upstreams = server, wire, list(upstreams)
        self.reply, self.udp = reply, udp
        self.last: bytes | None = None
        self.sock: socket.socket | None = None
        self.buf = bytearray()
        self.out = b""
        self.deadline = 0.0
        server._forwards += 1

    def next(self) -> None:
        self.drop_socket()
        if not self.upstreams:
            self.finish(self.last if self.last is not None else servfail(self.wire))
            return
        host, port = self.upstreams.pop(0)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self.sock = socket.socket(family, socket.SOCK_DGRAM if self.udp else socket.SOCK_STREAM)
            self.sock.setblocking(False)
            if self.udp:
                self.sock.connect((host, port))
                self.sock.send(self.wire)
                self.watch(selectors.EVENT_READ)
            else:
                self.out = struct.pack("!H", len(self.wire)) + self.wire
                err = self.sock.connect_ex((host, port))
                if err not in (0, errno.EINPROGRESS):
                    raise OSError(err, os.strerror(err))
                self.watch(selectors.EVENT_WRITE)
        except OSError:
            self.next()
            return
        self.deadline = time.monotonic() + self.server.timeout
        self.server._at(self.deadline, self)

    def watch(self, events: int) -> None:
        sel = self.server._sel
        if self.sock in sel.get_map():
            sel.modify(self.sock, events, self.on_event)
        else:
            sel.register(self.sock, events, self.on_event)

    def expire(self) -> None:
        self.next()

    def on_event(self, mask: int) -> None:
        try:
            if self.udp:
                self.on_datagram()
            elif mask & selectors.EVENT_WRITE:
                self.on_writable()
            else:
                self.on_stream()
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:  # refused, reset, unreachable: the next upstream
            self.next()

    def on_datagram(self) -> None:
        data = self.sock.recv(65535)
        if len(data) >= 12 and data[:2] == self.wire[:2] and data[2] & 0x80:
            self.answer(data)

    def on_writable(self) -> None:
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, os.strerror(err))
        sent = self.sock.send(self.out)
        self.out = self.out[sent:]
        if not self.out:
            self.watch(selectors.EVENT_READ)

    def on_stream(self) -> None:
        data = self.sock.recv(65537)
        if not data:
            raise ConnectionResetError(errno.ECONNRESET, "closed by the upstream")
        self.buf += data
        if len(self.buf) >= 2:
            size = struct.unpack_from("!H", self.buf)[0]
            if len(self.buf) >= 2 + size:
                self.answer(bytes(self.buf[2:2 + size]))

    def answer(self, data: bytes) -> None:
        """docker's rules: errors and a non-authoritative NXDOMAIN try the next upstream;
        the last one received is what the client gets if none does better."""
        rcode, authoritative = data[3] & 0x0F, bool(data[2] & 0x04)
        self.last = data
        if rcode == _RCODE_NOERROR or (rcode == _RCODE_NXDOMAIN and authoritative):
            self.finish(data)
        else:
            self.next()

    def finish(self, data: bytes) -> None:
        self.drop_socket()
        self.upstreams = []
        self.server._forwards -= 1
        self.reply(data)

    def drop_socket(self) -> None:
        self.deadline = 0.0
        self.buf = bytearray()
        if self.sock is not None:
            self.server._unregister(self.sock)
            self.sock.close()
            self.sock = None
