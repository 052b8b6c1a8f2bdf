"""A small DNS server for tests: the "host's resolver" that Kade's embedded DNS forwards
to, on 127.0.0.1 with a random port, over UDP and TCP (one port for both).

Names it knows (anything else: an authoritative NXDOMAIN):
- example.test: A 192.0.2.10 (data only: nothing is ever sent there)
- big.test: 60 A records; over UDP it answers truncated (TC, no records), as a real
  server does when the answer does not fit 512 bytes
- fail.test: SERVFAIL; refused.test: REFUSED
- slow.test: never answered
`seen` lists (protocol, name, type) of every query, in arrival order.
"""

import socket
import struct
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

BIG = [f"192.0.2.{i}" for i in range(1, 61)]


class FakeUpstream:
    def __init__(self, answers: dict[str, list[str]] | None = None) -> None:
        self.answers = {"example.test.": ["192.0.2.10"], "big.test.": BIG, **(answers or {})}
        self.seen: list[tuple[str, str, str]] = []
        self.udp, self.tcp = _bind_pair()
        self.port = self.udp.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._threads = [threading.Thread(target=self._serve_udp, daemon=True),
                         threading.Thread(target=self._serve_tcp, daemon=True)]
        for t in self._threads:
            t.start()

    def close(self) -> None:
        for s in (self.udp, self.tcp):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def respond(self, wire: bytes, proto: str) -> bytes | None:
        query = dns.message.from_wire(wire)
        q = query.question[0]
        name = q.name.to_text().lower()
        self.seen.append((proto, name, dns.rdatatype.to_text(q.rdtype)))
        resp = dns.message.make_response(query)
        resp.flags |= dns.flags.RA
        if name in self.answers and q.rdtype == dns.rdatatype.A:
            resp.answer.append(dns.rrset.from_text_list(q.name, 300, "IN", "A",
                                                        self.answers[name]))
        elif name == "slow.test.":
            return None
        elif name == "fail.test.":
            resp.set_rcode(dns.rcode.SERVFAIL)
        elif name == "refused.test.":
            resp.set_rcode(dns.rcode.REFUSED)
        elif name not in self.answers:
            resp.flags |= dns.flags.AA
            resp.set_rcode(dns.rcode.NXDOMAIN)
        out = resp.to_wire()
        if proto == "udp" and len(out) > 512:
            resp.answer = []
            resp.flags |= dns.flags.TC
            out = resp.to_wire()
        return out

    def _serve_udp(self) -> None:
        while True:
            try:
                wire, addr = self.udp.recvfrom(65535)
            except OSError:
                return
            if not wire:
                return
            out = self.respond(wire, "udp")
            if out:
                self.udp.sendto(out, addr)

    def _serve_tcp(self) -> None:
        while True:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            threading.Thread(target=self._serve_conn, args=(conn,), daemon=True).start()

    def _serve_conn(self, conn: socket.socket) -> None:
        with conn:
            while True:
                head = _recv_exact(conn, 2)
                if not head:
                    return
                wire = _recv_exact(conn, struct.unpack("!H", head)[0])
                out = self.respond(wire, "tcp")
                if out:
                    conn.sendall(struct.pack("!H", len(out)) + out)


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return b""
        data += chunk
    return data


def _bind_pair() -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on one free port of 127.0.0.1."""
    while True:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.bind(("127.0.0.1", udp.getsockname()[1]))
        except OSError:
            udp.close()
            tcp.close()
            continue
        tcp.listen(16)
        return udp, tcp
