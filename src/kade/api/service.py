"""The CLI's `kade system service` flags, turned into listeners and a running service."""

from __future__ import annotations

import os
import sys

from kade.api import server
from kade.errors import InvalidArgument


def listeners_of(ns) -> list[server.Listener]:
    hosts = [server.parse_host(h) for h in ns.host]
    if ns.socket:
        hosts.append(server.Listener("unix", ns.socket))
    if ns.docker_socket:
        hosts.append(server.Listener("unix", server.DOCKER_SOCKET))
    if not hosts:
        hosts.append(server.Listener("fd", "") if _activated()
                     else server.Listener("unix", server.DEFAULT_SOCKET))
    return hosts


def _activated() -> bool:
    return os.environ.get("LISTEN_PID") == str(os.getpid())


def idle_time(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise InvalidArgument(f'invalid argument "{value}" for "-t, --time" flag: '
                              "want seconds") from None
    if seconds < 0:
        raise InvalidArgument(f'invalid argument "{value}" for "-t, --time" flag: negative')
    return seconds


def tls_of(ns):
    if not (ns.tlscert or ns.tlskey or ns.tlsverify):
        return None
    if not (ns.tlscert and ns.tlskey):
        raise InvalidArgument("TLS needs both --tlscert and --tlskey")
    return server.tls_context(ns.tlscert, ns.tlskey, ns.tlscacert, ns.tlsverify)


def main(root: str | None, ns, driver: str | None = None) -> int:
    listeners = listeners_of(ns)
    seconds = idle_time(ns.time)
    tls = tls_of(ns)
    for listener in listeners:  # refuse before detaching: the user sees why
        server.check_tcp(listener, tls is not None)
    if ns.detach:
        return _detach(root, listeners, seconds, ns.group, tls, driver)
    server.serve(root, listeners, idle_time=seconds, group=ns.group, tls=tls, driver=driver)
    return 0


def _detach(root, listeners, seconds, group, tls, driver) -> int:
    """Forks the service into its own session; the parent returns once it listens,
    or with its error."""
    r, w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(w)
        with os.fdopen(r, "rb") as f:
            report = f.read()
        os.waitpid(pid, 0)
        if report != b"ok":
            sys.stderr.write((report.decode() or "error: the service did not start") + "\n")
            return 1
        return 0
    os.close(r)
    code = 0
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1):
            os.dup2(null, fd)

        def ready() -> None:
            os.write(w, b"ok")
            os.close(w)
            os.dup2(null, 2)
        server.serve(root, listeners, idle_time=seconds, group=group, tls=tls,
                     driver=driver, ready=ready)
    except BaseException as e:  # noqa: BLE001 - reported to the waiting parent
        try:
            os.write(w, f"error: {e}".encode())
        except OSError:
            pass
        code = 1
    os._exit(code)
