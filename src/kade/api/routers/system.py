"""System: `/_ping`, `/version`, `/info`, `/events`, `/system/df`, `/auth`."""

from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING, Iterator, Protocol

from kade.api import versions
from kade.api.router import (Context, Route, json_lines, json_response, stream_response,
                             text_response)
from kade.errors import InvalidArgument
from kade.registry.httpd import Response

if TYPE_CHECKING:
    from kade.engine.diskusage import DiskUsage
    from kade.engine.listing import ContainerSummary, ImageSummary


class Backend(Protocol):
    root: str
    driver: str

    def list_containers(self, all: bool = False, filters: dict | None = None,
                        last: int = -1, latest: bool = False,
                        size: bool = False) -> list[ContainerSummary]: ...

    def list_images(self, all: bool = False,
                    filters: dict | None = None) -> list[ImageSummary]: ...

    def disk_usage(self) -> DiskUsage: ...

    def events(self, since: float | None, until: float | None,
               filters: dict[str, list[str]]) -> Iterator[dict]: ...

    def check_login(self, registry: str | None, username: str, password: str) -> None: ...


class EngineBackend:
    """The engine's calls behind the protocol (the CLI's `info`, `df`, `events`, `login`)."""

    def __init__(self, engine):
        self.engine = engine
        self.root = engine.root
        self.list_containers = engine.list_containers
        self.list_images = engine.list_images
        self.disk_usage = engine.disk_usage

    @property
    def driver(self) -> str:
        return self.engine.driver

    def events(self, since, until, filters):
        from kade.engine import stats
        unknown = set(filters) - stats.EVENT_FILTERS  # a 400 now, not an empty stream
        if unknown:
            raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
        return stats.events(self.engine, since=since, until=until, filters=filters)

    def check_login(self, registry, username, password) -> None:
        from kade.engine import run
        run.check_login(self.engine, registry, username, password)


backend = EngineBackend


def routes() -> list[Route]:
    return [
        Route("GET", "/_ping", ping),
        Route("HEAD", "/_ping", ping),
        Route("GET", "/version", version),
        Route("GET", "/info", info),
        Route("GET", "/events", events),
        Route("GET", "/system/df", disk_usage),
        Route("POST", "/auth", auth),
    ]


def ping(ctx: Context) -> Response:
    resp = text_response("OK")
    resp.headers.update(versions.ping_headers())
    return resp


def version(ctx: Context) -> Response:
    return json_response(versions.version_body())


def info(ctx: Context) -> Response:
    b: Backend = ctx.backend
    containers = b.list_containers(all=True)
    status = [c.state.get("Status") for c in containers]
    images = b.list_images()
    return json_response(_info_body(b, len(containers), status.count("running"),
                                    status.count("paused"), len(images)))


def _info_body(b: Backend, total: int, running: int, paused: int, images: int) -> dict:
    from kade import __version__
    from kade.engine.stats import host_memory
    cgroup2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    return {
        "ID": _machine_id(), "Containers": total, "ContainersRunning": running,
        "ContainersPaused": paused, "ContainersStopped": total - running - paused,
        "Images": images, "Driver": b.driver, "DriverStatus": [],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"],
                    "Authorization": None, "Log": ["json-file"]},
        "MemoryLimit": True, "SwapLimit": True, "CpuCfsPeriod": True, "CpuCfsQuota": True,
        "CPUShares": True, "CPUSet": True, "PidsLimit": True, "IPv4Forwarding": True,
        "Debug": False, "NFd": len(os.listdir("/proc/self/fd")), "OomKillDisable": False,
        "NGoroutines": 0, "SystemTime": _now_rfc3339(), "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs", "CgroupVersion": "2" if cgroup2 else "1",
        "NEventsListener": 0, "KernelVersion": platform.release(),
        "OperatingSystem": _os_name(), "OSVersion": "", "OSType": "linux",
        "Architecture": platform.machine(), "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"],
                           "Mirrors": []},
        "NCPU": os.cpu_count() or 1, "MemTotal": host_memory(), "DockerRootDir": b.root,
        "HttpProxy": "", "HttpsProxy": "", "NoProxy": "", "Name": platform.node(),
        "Labels": [], "ExperimentalBuild": False, "ServerVersion": __version__,
        "Runtimes": {"kade": {"path": "kade"}}, "DefaultRuntime": "kade",
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "",
        "SecurityOptions": ["name=seccomp,profile=builtin"] +
        (["name=cgroupns"] if cgroup2 else []),
        "Warnings": None,
    }


def _machine_id() -> str:
    try:
        with open("/etc/machine-id") as f:
            return f.read().strip()
    except OSError:
        return ""


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _now_rfc3339() -> str:
    import time
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def events(ctx: Context) -> Response:
    since = _timestamp(ctx.query("since"), "since")
    until = _timestamp(ctx.query("until"), "until")
    b: Backend = ctx.backend
    return stream_response(json_lines(b.events(since, until, ctx.filters())))


def _timestamp(value: str | None, name: str) -> float | None:
    """Docker's since/until: seconds[.nanoseconds] since the epoch, or an RFC 3339
    time, or a duration before now ("10m")."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    import time
    from kade.util import units
    try:
        return time.time() - units.parse_duration(value)
    except (ValueError, InvalidArgument):
        pass
    try:
        from datetime import datetime
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InvalidArgument(f'invalid value for {name}: "{value}"') from None


def disk_usage(ctx: Context) -> Response:
    b: Backend = ctx.backend
    usage = b.disk_usage()
    layers = next((u.size for u in usage.summary if u.type == "Images"), 0)
    return json_response({
        "LayersSize": layers,
        "Images": [{"Id": i.id, "ParentId": "", "RepoTags": i.repo_tags, "RepoDigests": [],
                    "Created": 0, "Size": i.size, "SharedSize": -1, "VirtualSize": i.size,
                    "Labels": {}, "Containers": i.containers} for i in usage.images],
        "Containers": [{"Id": c.id, "Names": ["/" + c.name], "Image": c.image,
                        "ImageID": "", "Command": "", "Created": 0, "Ports": [],
                        "SizeRw": c.size, "SizeRootFs": 0, "Labels": {}, "State": c.status,
                        "Status": c.status, "HostConfig": {}, "NetworkSettings": {},
                        "Mounts": []} for c in usage.containers],
        "Volumes": [{"Name": v.name, "Driver": "local", "Mountpoint": "", "Labels": {},
                     "Scope": "local", "Options": {},
                     "UsageData": {"Size": v.size, "RefCount": v.links}}
                    for v in usage.volumes],
        "BuildCache": [],
    })


def auth(ctx: Context) -> Response:
    body = ctx.json(default={}) or {}
    if not isinstance(body, dict):
        raise InvalidArgument("auth: the body must be a JSON object")
    b: Backend = ctx.backend
    b.check_login(body.get("serveraddress") or None, body.get("username", ""),
                  body.get("password", ""))
    return json_response({"Status": "Login Succeeded", "IdentityToken": ""})
