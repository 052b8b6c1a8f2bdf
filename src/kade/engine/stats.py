"""Watching containers: top, stats, port and events, with docker's rules.

Numbers come from the container's cgroup (`/kade/<id>`, see kade.runtime.cgroups),
its network namespace (/proc/<pid>/net/dev) and the host (/proc/stat,
/proc/meminfo); events from the records Engine.emit keeps in the database.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

from kade.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound


def _running_pid(engine, cid: str) -> int:
    from kade.engine.procs import pid_alive
    _, state = engine.containers.get(cid)
    pid = state.get("Pid", 0)
    if not state["Running"] or not pid_alive(pid, state.get("PidStart")):
        raise Conflict(f"container {cid} is not running")
    return pid


def _cgroup(cid: str):
    from kade.runtime.cgroups import open_cgroup
    return open_cgroup(f"/kade/{cid}")


# --- top ------------------------------------------------------------------------
def top(engine, cid: str, ps_args: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """Docker's top: the host's `ps` (default -ef), rows of the container's processes."""
    _running_pid(engine, cid)
    pids = _cgroup(cid).pids()
    args = list(ps_args or ["-ef"])
    out = _run_ps(args, pids)
    titles, rows = parse_ps(out, pids)
    engine.emit("container", "top", cid)
    return titles, rows


def _run_ps(args: list[str], pids: list[int]) -> str:
    # "-q" keeps ps from reading every process of the host; some options (f) refuse it.
    attempts = [args + ["-q", ",".join(map(str, pids))], args] if pids else [args]
    for i, argv in enumerate(attempts):
        proc = subprocess.run(["ps", *argv], capture_output=True, text=True)
        if proc.returncode == 0:
            return proc.stdout
        if i == len(attempts) - 1:
            first = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[0]
            raise FailedPrecondition(f"ps: {first}")
    return ""  # pragma: no cover


def parse_ps(output: str, pids: list[int]) -> tuple[list[str], list[list[str]]]:
    """Titles, and the lines whose PID is one of pids; the last column keeps spaces."""
    lines = [line for line in output.splitlines() if line.strip()]
    if not lines:
        raise FailedPrecondition("ps printed nothing")
    titles = lines[0].split()
    if "PID" not in titles:
        raise FailedPrecondition("couldn't find PID field in ps output")
    at = titles.index("PID")
    wanted = set(pids)
    rows = []
    for line in lines[1:]:
        fields = line.split()
        try:
            pid = int(fields[at])
        except (IndexError, ValueError):
            continue
        if pid in wanted:
            head = fields[:len(titles) - 1]
            rows.append(head + [" ".join(fields[len(titles) - 1:])])
    return titles, rows


# --- stats ----------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    """One reading of a container's counters (bytes, nanoseconds)."""

    cpu_ns: int
    system_ns: int
    online_cpus: int
    memory: int
    memory_limit: int
    net_rx: int
    net_tx: int
    block_read: int
    block_write: int
    pids: int


@dataclass(frozen=True)
class Usage:
    """What a `docker stats` line says about one container."""

    id: str
    name: str
    cpu_percent: float
    memory: int
    memory_limit: int
    memory_percent: float
    net_rx: int
    net_tx: int
    block_read: int
    block_write: int
    pids: int


ZERO = Sample(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def sample(engine, cid: str) -> Sample:
    """The container's counters now; all zero when it is not running."""
    try:
        pid = _running_pid(engine, cid)
    except Conflict:
        return ZERO
    record, _ = engine.containers.get(cid)
    s = _cgroup(cid).stats()
    memory = (s.get("memory_usage") or 0) - (s.get("memory_inactive_file") or 0)
    host_mem = host_memory()
    limit = s.get("memory_limit") or host_mem
    rx, tx = (0, 0) if record["HostConfig"].get("NetworkMode") == "host" else net_io(pid)
    return Sample(s.get("cpu_usage_ns") or 0, system_cpu_ns(), online_cpus(), max(memory, 0),
                  min(limit, host_mem) if host_mem else limit, rx, tx,
                  s.get("blkio_read_bytes") or 0, s.get("blkio_write_bytes") or 0,
                  s.get("pids_current") or 0)


def usage(cid: str, name: str, prev: Sample | None, cur: Sample) -> Usage:
    """Docker's arithmetic: CPU % over the interval between two samples (0 with one)."""
    cpu = 0.0
    if prev is not None:
        cpu_delta = cur.cpu_ns - prev.cpu_ns
        system_delta = cur.system_ns - prev.system_ns
        if cpu_delta > 0 and system_delta > 0:
            cpu = cpu_delta / system_delta * cur.online_cpus * 100.0
    mem_pct = cur.memory / cur.memory_limit * 100.0 if cur.memory_limit else 0.0
    return Usage(cid, name, cpu, cur.memory, cur.memory_limit, mem_pct, cur.net_rx, cur.net_tx,
                 cur.block_read, cur.block_write, cur.pids)


def stats(engine, cids: list[str], interval: float = 0.1,
          previous: dict[str, Sample] | None = None) -> tuple[list[Usage], dict[str, Sample]]:
    """One reading of each container. Without previous samples, takes two,
    interval seconds apart; returns the samples for the next call."""
    names = {cid: engine.containers.get(cid)[0]["Name"].lstrip("/") for cid in cids}
    if previous is None:
        previous = {cid: sample(engine, cid) for cid in cids}
        time.sleep(interval)
    now = {cid: sample(engine, cid) for cid in cids}
    out = []
    for cid in cids:
        prev = previous.get(cid)
        out.append(usage(cid, names[cid], None if prev is ZERO else prev, now[cid]))
    return out, now


def system_cpu_ns() -> int:
    """The host's CPU time, all CPUs, from /proc/stat (docker's system_cpu_usage)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu "):
                ticks = sum(int(v) for v in line.split()[1:8])
                return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    return 0


def online_cpus() -> int:
    return os.sysconf("SC_NPROCESSORS_ONLN") or 1


def host_memory() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def net_io(pid: int) -> tuple[int, int]:
    """Bytes received and sent on every interface but lo of pid's network namespace."""
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.readlines()[2:]
    except OSError:
        return 0, 0
    return parse_net_dev(lines)


def parse_net_dev(lines: list[str]) -> tuple[int, int]:
    rx = tx = 0
    for line in lines:
        iface, _, counters = line.partition(":")
        fields = counters.split()
        if iface.strip() == "lo" or len(fields) < 9:
            continue
        rx += int(fields[0])
        tx += int(fields[8])
    return rx, tx


# --- port -----------------------------------------------------------------------
def ports(engine, cid: str) -> list[tuple[str, str]]:
    """Published ports: (private "80/tcp", public "0.0.0.0:8080"), docker's order."""
    from kade.engine.netview import network_settings
    record, state = engine.containers.get(cid)
    published = network_settings(record, state).get("Ports") or {}
    out = []
    for private in sorted(published, key=_port_key):
        for binding in published[private] or []:
            ip = binding.get("HostIp") or "0.0.0.0"
            host = f"[{ip}]" if ":" in ip else ip
            out.append((private, f"{host}:{binding.get('HostPort', '')}"))
    return out


def port(engine, cid: str, private: str) -> list[str]:
    """Public addresses of one private port ("80" means "80/tcp"); NotFound if none."""
    number, _, proto = private.partition("/")
    if not number.isdigit():
        raise InvalidArgument(f"invalid port: {private}")
    want = f"{int(number)}/{proto or 'tcp'}"
    found = [public for p, public in ports(engine, cid) if p == want]
    if not found:
        raise NotFound(f"no public port '{want}' published")
    return found


def _port_key(private: str) -> tuple[int, str]:
    number, _, proto = private.partition("/")
    return (int(number) if number.isdigit() else 0, proto)


# --- events ---------------------------------------------------------------------
EVENT_FILTERS = {"container", "event", "image", "label", "type", "volume", "network",
                 "daemon", "scope", "plugin", "node", "service", "secret", "config"}


class Event(dict):
    """One event: docker's JSON shape as items, its Go field names as attributes
    (so `--format '{{json .}}'` and `{{.Status}}` both work, as in docker)."""

    Status = property(lambda self: self.get("status", ""))
    ID = property(lambda self: self.get("id", ""))
    From = property(lambda self: self.get("from", ""))
    Scope = property(lambda self: self.get("scope", ""))
    Time = property(lambda self: self.get("time", 0))
    TimeNano = property(lambda self: self.get("timeNano", 0))


def make_event(record: dict, names: dict[str, dict]) -> Event:
    """Docker's message for a stored record. names maps container ids to the
    attributes docker puts on every container event (name, image, labels); a
    record that lacks them gets them from there."""
    actor = record.get("Actor") or {}
    attrs = dict(actor.get("Attributes") or {})
    typ, action = record.get("Type", ""), record.get("Action", "")
    actor_id = actor.get("ID", record.get("id", ""))
    out = Event()
    if typ == "container":
        base = names.get(actor_id)
        if base:
            attrs = {**base, **attrs}
        elif "name" in attrs:
            names[actor_id] = {k: attrs[k] for k in ("image", "name") if k in attrs}
        if action == "rename" and base:
            base["name"] = attrs.get("name", base.get("name", ""))
    if typ in ("container", "image"):  # docker's deprecated fields, still sent
        out.update(status=action, id=actor_id)
        if typ == "container" and attrs.get("image"):
            out["from"] = attrs["image"]
    out.update(Type=typ, Action=action, Actor={"ID": actor_id, "Attributes": attrs},
               scope=record.get("scope", "local"), time=record.get("time", 0),
               timeNano=record.get("timeNano", 0))
    return out


def _known_containers(engine) -> dict[str, dict]:
    out = {}
    for record, _ in engine.containers.list(all_=True):
        cfg = record["Config"]
        out[record["Id"]] = {**(cfg.get("Labels") or {}), "image": cfg.get("Image", ""),
                             "name": record["Name"].lstrip("/")}
    return out


def matches(ev: Event, filters: dict[str, list[str]]) -> bool:
    """Docker's event filters: keys AND together, values of one key OR."""
    attrs = ev["Actor"]["Attributes"]
    tests = {
        "type": lambda v: ev["Type"] == v,
        "event": lambda v: ev["Action"] == v or ev["Action"].split(":")[0] == v,
        "container": lambda v: ev["Type"] == "container" and _fuzzy(v, ev["Actor"]["ID"],
                                                                    attrs.get("name", "")),
        "image": lambda v: _image_matches(v, ev, attrs),
        "label": lambda v: _label_matches(v, attrs),
        "volume": lambda v: ev["Type"] == "volume" and _fuzzy(v, ev["Actor"]["ID"]),
        "network": lambda v: ev["Type"] == "network" and _fuzzy(v, ev["Actor"]["ID"],
                                                                attrs.get("name", "")),
        "scope": lambda v: ev["scope"] == v,
        "daemon": lambda v: ev["Type"] == "daemon" and _fuzzy(v, ev["Actor"]["ID"]),
    }
    for key, values in filters.items():
        test = tests.get(key)
        if test is not None and not any(test(v) for v in values):
            return False
    return True


def _fuzzy(value: str, *sources: str) -> bool:
    return any(s and (s == value or s.startswith(value)) for s in sources)


def _image_matches(value: str, ev: Event, attrs: dict) -> bool:
    names = [attrs.get("image", "")]
    if ev["Type"] == "image":
        names += [ev["Actor"]["ID"], attrs.get("name", "")]
    bare = value if ":" not in value.rpartition("/")[2] else None
    for name in filter(None, names):
        if name == value or (bare and name.rsplit(":", 1)[0] == bare and
                             ":" in name.rpartition("/")[2]):
            return True
    return False


def _label_matches(value: str, attrs: dict) -> bool:
    key, eq, want = value.partition("=")
    return key in attrs and (not eq or attrs[key] == want)


def events(engine, *, since: float | None = None, until: float | None = None,
           filters: dict[str, list[str]] | None = None, poll: float = 0.1) -> Iterator[Event]:
    """Docker's events: stored ones from since (none without since or until),
    then new ones as they come, until `until` passes (forever without it)."""
    filters = filters or {}
    unknown = set(filters) - EVENT_FILTERS
    if unknown:
        raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
    names = _known_containers(engine)
    db = engine.db
    seq = 0
    if since is None and until is None:
        seq = max((s for s, _ in db.events()), default=0)  # only what happens from now on
    start = since or 0.0
    while True:
        batch = db.events(after_seq=seq, since=start)
        for number, record in batch:
            seq = number
            if record.get("timeNano", 0) / 1e9 > (until if until is not None else 1e300):
                return
            actor = (record.get("Actor") or {}).get("ID", "")
            if record.get("Type") == "container" and actor not in names:
                names.update(_known_containers(engine))  # a container created meanwhile
                names.setdefault(actor, {})  # looked up once, even if gone
            ev = make_event(record, names)
            if matches(ev, filters):
                yield ev
        if until is not None and time.time() > until:
            return
        time.sleep(poll)


# --- printing ----------------------------------------------------------------------
def format_time(nanos: int) -> str:
    """Go's RFC3339NanoFixed in local time, as docker events prints it."""
    secs, frac = divmod(nanos, 1_000_000_000)
    tm = time.localtime(secs)
    offset = tm.tm_gmtoff or 0
    if offset == 0:
        zone = "Z"
    else:
        sign = "+" if offset > 0 else "-"
        zone = f"{sign}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", tm) + f".{frac:09d}" + zone


def event_line(ev: Event) -> str:
    """Docker's default line: time, type, action, actor and its sorted attributes."""
    stamp = format_time(ev["timeNano"] or ev["time"] * 1_000_000_000)
    line = f"{stamp} {ev['Type']} {ev['Action']} {ev['Actor']['ID']}"
    attrs = ev["Actor"]["Attributes"]
    if attrs:
        line += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return line
