"""Health checks (`--health-*`, HEALTHCHECK): docker's probe loop, run by the monitor.

A probe is an exec in the container. State.Health is {Status: starting | healthy
| unhealthy, FailingStreak, Log: the last 5 probes}. Failures inside the start
period do not count; `Retries` consecutive failures make the container
unhealthy; one success makes it healthy.
"""

from __future__ import annotations

import os
import select
import threading
import time

from kade.util.ids import now_rfc3339

NS = 1_000_000_000
DEFAULTS = {"Interval": 30 * NS, "Timeout": 30 * NS, "StartPeriod": 0, "Retries": 3}
LOG_KEEP = 5
OUTPUT_MAX = 4096


def probe_argv(test: list[str]) -> list[str] | None:
    """The command a HEALTHCHECK test runs, or None for NONE / no test."""
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    if test[0] == "CMD":
        return list(test[1:])
    return list(test)


def settings(health: dict) -> dict:
    out = {k: health.get(k) or v for k, v in DEFAULTS.items()}
    out["StartInterval"] = health.get("StartInterval") or out["Interval"]
    return out


class HealthChecker:
    """Probes one running container until `stop` (its monitor calls it at exit)."""

    def __init__(self, engine, cid: str, health: dict):
        self.engine, self.cid = engine, cid
        self.argv = probe_argv(health.get("Test") or [])
        self.cfg = settings(health)
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, resume: bool = False) -> None:
        """resume: a new supervisor takes over a running container: its health so far
        stays, and probing goes on."""
        if self.argv is None:
            return
        if not resume or not self.engine.db.container(self.cid)[1].get("Health"):
            self.engine.db.update_state(self.cid, {"Health": {"Status": "starting",
                                                              "FailingStreak": 0, "Log": []}})
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join()

    def _loop(self) -> None:
        started = time.monotonic()
        while True:
            in_start = time.monotonic() - started < self.cfg["StartPeriod"] / NS
            wait = self.cfg["StartInterval" if in_start else "Interval"] / NS
            if self.stopped.wait(wait):
                return
            result = self._probe()
            if self.stopped.is_set():
                return
            self._record(result, time.monotonic() - started < self.cfg["StartPeriod"] / NS)

    def _probe(self) -> dict:
        from kade.engine import execs
        begin = now_rfc3339()
        req = execs.ExecRequest(argv=self.argv or [])  # start() probes only with one
        try:
            proc = execs.process_for(self.engine, self.cid, req)
            r, w = os.pipe()
            null = os.open(os.devnull, os.O_RDONLY)
            try:
                pid = self.engine.runtime.exec(self.cid, proc, stdio=(null, w, w))
            finally:
                os.close(w)
                os.close(null)
            output, code = _collect(r, pid, self.cfg["Timeout"] / NS)
        except Exception as e:  # noqa: BLE001 - a probe that cannot run is a failed probe
            output, code = f"{e}\n", -1
        return {"Start": begin, "End": now_rfc3339(), "ExitCode": code, "Output": output}

    def _record(self, result: dict, in_start_period: bool) -> None:
        state = self.engine.db.container(self.cid)[1]
        health = dict(state.get("Health") or {"Status": "starting", "FailingStreak": 0})
        health["Log"] = (health.get("Log") or [])[-(LOG_KEEP - 1):] + [result]
        before = health["Status"]
        if result["ExitCode"] == 0:
            health["Status"], health["FailingStreak"] = "healthy", 0
        elif not in_start_period:
            health["FailingStreak"] = health.get("FailingStreak", 0) + 1
            if health["FailingStreak"] >= self.cfg["Retries"]:
                health["Status"] = "unhealthy"
        self.engine.db.update_state(self.cid, {"Health": health})
        if health["Status"] != before:
            self.engine.emit("container", f"health_status: {health['Status']}", self.cid)


def _collect(fd: int, pid: int, timeout: float) -> tuple[str, int]:
    """Output (at most 4 KiB kept) and exit code of a probe; killed after `timeout`."""
    deadline = time.monotonic() + timeout
    chunks, size = [], 0
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                return f"Health check exceeded timeout ({timeout:g}s)", -1
            data = os.read(fd, 65536)
            if not data:
                break
            if size < OUTPUT_MAX:
                chunks.append(data[:OUTPUT_MAX - size])
                size += len(chunks[-1])
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return b"".join(chunks).decode(errors="replace"), os.waitstatus_to_exitcode(status)
