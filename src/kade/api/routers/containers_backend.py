"""What the containers router consumes, and the engine's calls behind it (the same
calls `kade run`, `ps`, `logs`, `rm`... make: kade/cli/run.py, ps.py, lifecycle.py)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterator, Protocol

if TYPE_CHECKING:
    from kade.engine.listing import ContainerSummary
    from kade.engine.options import CreateOptions


class Backend(Protocol):
    def create(self, opts: CreateOptions) -> str: ...
    def resolve(self, ref: str) -> str: ...
    def state(self, cid: str) -> dict: ...
    def record(self, cid: str) -> dict: ...
    def listing(self, all: bool, filters: dict, limit: int,
                size: bool) -> list[ContainerSummary]: ...
    def inspect(self, cid: str) -> dict: ...
    def start(self, cid: str, attach: dict | None = None,
              fds: tuple[int, int, int] = (0, 1, 2)) -> Any: ...
    def stop(self, cid: str, timeout: int | None, signal: int | None) -> None: ...
    def restart(self, cid: str, timeout: int | None, signal: int | None) -> None: ...
    def kill(self, cid: str, signal: int) -> None: ...
    def pause(self, cid: str) -> None: ...
    def unpause(self, cid: str) -> None: ...
    def wait(self, cid: str, condition: str) -> int: ...
    def remove(self, ref: str, force: bool, volumes: bool) -> None: ...
    def rename(self, ref: str, new_name: str) -> None: ...
    def logs(self, cid: str, since: float, until: float, tail: int,
             follow: bool) -> Iterator[dict]: ...
    def top(self, cid: str, ps_args: list[str] | None) -> tuple[list[str], list[list[str]]]: ...
    def changes(self, cid: str) -> list[tuple[str, str]]: ...
    def prune(self, filters: list[str]) -> tuple[list[str], int]: ...
    def stat_path(self, cid: str, path: str, ref: str) -> Any: ...
    def open_archive(self, cid: str, path: str, ref: str) -> Any: ...
    def put_archive(self, cid: str, dest: str, produce, ref: str) -> None: ...
    def export(self, cid: str) -> Any: ...


class EngineBackend:
    def __init__(self, engine):
        self.engine = engine

    def create(self, opts):
        from kade.engine import run
        run.ensure_image(self.engine, opts.image, "never")  # 404: the client pulls
        return self.engine.containers.create(opts)

    def resolve(self, ref):
        return self.engine.containers.resolve(ref)

    def state(self, cid):
        return self.engine.containers.state(cid)

    def record(self, cid):
        return self.engine.containers.get(cid)[0]

    def listing(self, all, filters, limit, size):
        return self.engine.list_containers(all=all, filters=filters, last=limit, size=size)

    def inspect(self, cid):
        return self.engine.containers.inspect(cid)

    def start(self, cid, attach=None, fds=(0, 1, 2)):
        from kade.api import supervisor
        from kade.engine import lifecycle
        supervisor.ensure(self.engine)
        return lifecycle.start(self.engine, cid, attach, fds)

    def stop(self, cid, timeout, signal):
        from kade.engine import lifecycle
        lifecycle.stop(self.engine, cid, timeout, signal)

    def restart(self, cid, timeout, signal):
        from kade.api import supervisor
        from kade.engine import lifecycle
        supervisor.ensure(self.engine)
        lifecycle.restart(self.engine, cid, timeout, signal)

    def kill(self, cid, signal):
        from kade.engine import lifecycle
        lifecycle.kill(self.engine, cid, signal)

    def pause(self, cid):
        from kade.engine import lifecycle
        lifecycle.pause(self.engine, cid)

    def unpause(self, cid):
        from kade.engine import lifecycle
        lifecycle.unpause(self.engine, cid)

    def wait(self, cid, condition):
        """docker's conditions: not-running (now or when it stops), next-exit (the
        next exit from now), removed (its exit code once it is gone)."""
        from kade.engine import lifecycle, stats
        if condition == "not-running":
            return lifecycle.wait(self.engine, cid)
        since = time.time()
        state = self.engine.containers.state(cid)
        code = int(state.get("ExitCode", 0))
        if condition == "removed" and not state["Running"] \
                and not self.record(cid)["HostConfig"].get("AutoRemove"):
            pass  # waits for an `rm`, as docker does
        flt = {"container": [cid], "event": ["die", "destroy"]}
        for ev in stats.events(self.engine, since=since, filters=flt, poll=0.02):
            if ev["Action"] == "die":
                code = int(ev["Actor"]["Attributes"].get("exitCode", code))
                if condition == "next-exit":
                    return code
            elif ev["Action"] == "destroy":
                return code
        return code

    def remove(self, ref, force, volumes):
        self.engine.containers.remove(ref, force=force, volumes=volumes)

    def rename(self, ref, new_name):
        self.engine.containers.rename(ref, new_name)

    def logs(self, cid, since, until, tail, follow):
        """What the log holds now is read before this returns: a client may remove
        the container before it reads the stream (docker-py's run does)."""
        from kade.engine import logs
        path = self.record(cid)["LogPath"]
        entries, offset = logs.read(path, since=since, until=until, tail=tail)
        return self._follow(cid, path, entries, offset, since, until, follow)

    def _follow(self, cid, path, entries, offset, since, until, follow):
        from kade.engine import logs
        yield from entries
        from kade.errors import NotFound
        while follow and not until:
            try:
                running = self.engine.containers.state(cid)["Running"]
            except NotFound:  # removed meanwhile: its log ends here
                return
            entries, offset = logs.read(path, since=since, offset=offset)
            yield from entries
            if not running:
                return
            logs.follow_sleep()

    def top(self, cid, ps_args):
        from kade.engine import stats
        return stats.top(self.engine, cid, ps_args)

    def changes(self, cid):
        from kade.engine import files
        return files.changes(self.engine, cid)

    def prune(self, filters):
        from kade.engine import prune
        return prune.containers(self.engine, prune.Filter(filters))

    def stat_path(self, cid, path, ref):
        from kade.engine import files
        return files.stat_path(self.engine, cid, path, ref=ref)

    def open_archive(self, cid, path, ref):
        from kade.engine import files
        return files.open_archive(self.engine, cid, path, ref=ref)

    def put_archive(self, cid, dest, produce, ref):
        from kade.engine import files
        files.put_archive(self.engine, cid, dest, produce, ref=ref)

    def export(self, cid):
        from kade.engine import files
        return files.export(self.engine, cid)
