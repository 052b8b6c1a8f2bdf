"""`kade system service`: the Docker Engine API on unix sockets and loopback TCP.

HTTP is the registry's HTTP/1.1 core (kade.registry.httpd): an epoll waiting
room reads request heads, a pool of worker threads serves them, so an idle
keep-alive connection costs no thread; a stream (events, logs -f, stats) or a
hijacked connection (attach, exec) holds one worker until it ends. Each worker
thread has its own Engine (its own SQLite connection): see router.App.

Listeners:
    unix:///run/kade/docker.sock     (default; 0660, group `docker` when it exists)
    tcp://127.0.0.1:2375             (loopback only, unless TLS is configured)
    fd://                            (systemd socket activation: LISTEN_FDS)

The service exits after `idle_time` seconds with no request in flight
(podman's --time; 0 means never).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING

from kade.errors import InvalidArgument

if TYPE_CHECKING:
    import ssl

    from kade.api.router import App
    from kade.registry.httpd import Server

DEFAULT_SOCKET = "/run/kade/docker.sock"
DOCKER_SOCKET = "/var/run/docker.sock"
DEFAULT_IDLE = 5.0  # podman system service's default --time
SD_LISTEN_FDS_START = 3
MAX_REQUESTS = 256  # requests served at once; streams and attaches count


class Listener:
    """Where to listen: ("unix", path), ("tcp", (host, port)) or ("fd", fd)."""

    def __init__(self, kind: str, address):
        self.kind, self.address = kind, address

    def __repr__(self) -> str:
        return f"Listener({self.kind!r}, {self.address!r})"


def parse_host(value: str) -> Listener:
    """docker's -H grammar: unix://PATH, tcp://HOST:PORT, fd://, or a bare path."""
    if value.startswith("unix://"):
        path = value[len("unix://"):] or DEFAULT_SOCKET
        return Listener("unix", path)
    if value.startswith("fd://"):
        return Listener("fd", value[len("fd://"):])
    if value.startswith("tcp://"):
        hostport = value[len("tcp://"):].rstrip("/")
        host, sep, port = hostport.rpartition(":")
        if not sep or not port.isdigit():
            raise InvalidArgument(f'invalid tcp address "{value}": want tcp://HOST:PORT')
        return Listener("tcp", (host.strip("[]") or "127.0.0.1", int(port)))
    if value.startswith("/"):
        return Listener("unix", value)
    raise InvalidArgument(f'invalid host "{value}": want unix://PATH or tcp://HOST:PORT')


def check_tcp(listener: Listener, tls: bool) -> None:
    """A TCP listener is refused on anything but loopback unless TLS is on: the API
    is root on this machine."""
    if listener.kind != "tcp" or tls:
        return
    host = listener.address[0]
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise InvalidArgument(f'refusing to listen on "{host}:{listener.address[1]}" without '
                              "TLS: the API gives root on this host; use a loopback address "
                              "or --tlsverify with --tlscacert, --tlscert and --tlskey")


def tls_context(cert: str, key: str, ca: str | None, verify: bool) -> ssl.SSLContext:
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if verify:
        if not ca:
            raise InvalidArgument("--tlsverify needs --tlscacert")
        ctx.load_verify_locations(ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def socket_group(name: str | None) -> int:
    """The gid of the socket's group: `name`, else docker's `docker` group when it
    exists, else root's (-1: unchanged)."""
    import grp
    try:
        return grp.getgrnam(name or "docker").gr_gid
    except KeyError:
        if name:
            raise InvalidArgument(f'group "{name}" not found') from None
        return -1


def activated_sockets() -> list[socket.socket]:
    """Sockets systemd passed (LISTEN_PID is us): sd_listen_fds(3)."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return []
    count = int(os.environ.get("LISTEN_FDS", "0") or 0)
    for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(key, None)
    out = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count):
        os.set_inheritable(fd, False)
        out.append(socket.socket(fileno=fd))
    return out


def make_server(app: App, tls: ssl.SSLContext | None = None) -> Server:
    from kade.registry.httpd import Server
    return Server(app.handle, tls=tls, max_requests=MAX_REQUESTS,
                  access_log=bool(os.environ.get("KADE_API_LOG")))


def open_listener(server: Server, listener: Listener, gid: int) -> None:
    if listener.kind == "unix":
        os.makedirs(os.path.dirname(listener.address) or ".", exist_ok=True)
        server.bind_unix(listener.address, 0o660, gid)
    elif listener.kind == "tcp":
        server.bind(listener.address)
    else:
        raise InvalidArgument("fd:// listens only on sockets systemd passes (LISTEN_FDS)")


class Service:
    """The servers of every listener, one App, and the idle clock."""

    def __init__(self, app: App, servers: list[Server], idle_time: float):
        self.app = app
        self.servers = servers
        self.idle_time = idle_time
        self._stop = threading.Event()

    def run(self) -> None:
        for server in self.servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        self.app.last_activity = time.monotonic()
        try:
            while not self._stop.wait(0.25):
                if self.idle_time and self.app.idle_for() >= self.idle_time:
                    break
        finally:
            self.close()

    def stop(self, *_args) -> None:
        self._stop.set()

    def close(self) -> None:
        for server in self.servers:
            server.close()
            if server.sock is not None and server.sock.family == socket.AF_UNIX:
                _unlink_socket(server.address[0])


def _unlink_socket(path) -> None:
    if isinstance(path, str) and path:
        try:
            os.unlink(path)
        except OSError:
            pass


def serve(root: str | None, listeners: list[Listener], *, idle_time: float = DEFAULT_IDLE,
          group: str | None = None, tls: ssl.SSLContext | None = None,
          ready=None, driver: str | None = None) -> None:
    """Serve until idle or signalled. `ready()` runs once every listener is open."""
    import signal

    from kade.api.router import App, load_routes
    from kade.registry.httpd import raise_nofile_limit
    for listener in listeners:
        check_tcp(listener, tls is not None)
    raise_nofile_limit()
    app = App(root, load_routes(), driver=driver)
    gid = socket_group(group) if any(x.kind == "unix" for x in listeners) else -1
    servers = []
    inherited = activated_sockets()
    for sock in inherited:
        server = make_server(app, tls if sock.family != socket.AF_UNIX else None)
        server.use_socket(sock)
        servers.append(server)
    for listener in listeners:
        if listener.kind == "fd" and inherited:
            continue
        server = make_server(app, tls if listener.kind == "tcp" else None)
        open_listener(server, listener, gid)
        servers.append(server)
    service = Service(app, servers, idle_time)
    signal.signal(signal.SIGTERM, service.stop)
    signal.signal(signal.SIGINT, service.stop)
    if ready is not None:
        ready()
    service.run()


def log(message: str) -> None:
    sys.stderr.write(message + "\n")
