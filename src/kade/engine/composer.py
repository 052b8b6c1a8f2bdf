"""The engine as compose's backend: `Composer` satisfies kade.compose.backend.Backend
structurally (the engine never imports compose). Each method is one call into the
engine's existing verbs; no policy lives here."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from kade.errors import NotFound


class Composer:
    def __init__(self, engine):
        self.engine = engine

    def before_threads(self) -> None:
        """Starting the supervisor closes the database (no SQLite across fork):
        done once here, never while compose's threads use it."""
        from kade.engine import monitorclient
        monitorclient.connect(self.engine).close()

    # --- containers ---------------------------------------------------------------
    def create_container(self, options: dict, networks: list[dict]) -> str:
        from kade.engine.options import CreateOptions
        from kade.engine.run import ensure_image
        opts = CreateOptions(**options)
        ensure_image(self.engine, opts.image, opts.pull, quiet=True)
        cid = self.engine.containers.create(opts)
        try:
            for net in networks:
                self.engine.networks.connect(net["name"], cid, aliases=net.get("aliases") or (),
                                             ip=net.get("ip"))
        except BaseException:
            self.engine.containers.remove(cid, force=True)
            raise
        return cid

    def start_container(self, cid: str) -> None:
        from kade.engine import lifecycle
        lifecycle.start(self.engine, cid).close()

    def stop_container(self, cid: str, timeout: int | None = None) -> None:
        from kade.engine import lifecycle
        lifecycle.stop(self.engine, cid, timeout)

    def restart_container(self, cid: str, timeout: int | None = None) -> None:
        from kade.engine import lifecycle
        lifecycle.restart(self.engine, cid, timeout)

    def kill_container(self, cid: str, signal: str = "SIGKILL") -> None:
        from kade.engine import lifecycle
        from kade.engine.signals import parse_signal
        lifecycle.kill(self.engine, cid, parse_signal(signal), manual=True)

    def pause_container(self, cid: str) -> None:
        from kade.engine import lifecycle
        lifecycle.pause(self.engine, cid)

    def unpause_container(self, cid: str) -> None:
        from kade.engine import lifecycle
        lifecycle.unpause(self.engine, cid)

    def remove_container(self, cid: str, force: bool = False, volumes: bool = False) -> None:
        self.engine.containers.remove(cid, force=force, volumes=volumes)

    def rename_container(self, cid: str, name: str) -> None:
        self.engine.containers.rename(cid, name)

    def list_containers(self, labels: dict[str, str | None], all: bool = True) -> list[dict]:
        out = []
        for record, state in self.engine.containers.list(all):
            have = record["Config"].get("Labels") or {}
            if all_match(have, labels):
                out.append(_summary(record, state))
        return out

    def inspect_container(self, cid: str) -> dict:
        return self.engine.containers.inspect(cid)

    def wait_container(self, cid: str) -> int:
        from kade.engine import lifecycle
        return lifecycle.wait(self.engine, cid)

    def container_logs(self, cid: str, since: float = 0.0, tail: int = -1,
                       follow: bool = False) -> Iterator[dict]:
        from kade.engine import logs
        record, _ = self.engine.containers.get(cid)
        entries, offset = logs.read(record["LogPath"], since=since, tail=tail)
        yield from entries
        while follow:
            running = self.engine.containers.state(cid)["Running"]
            if not running:
                follow = False
            else:
                logs.follow_sleep()
            entries, offset = logs.read(record["LogPath"], since=since, offset=offset)
            yield from entries

    def exec(self, cid: str, argv: list[str], *, user: str | None = None,
             workdir: str | None = None, env: Sequence[str] = (), tty: bool = False,
             interactive: bool = False, privileged: bool = False,
             detach: bool = False) -> int:
        from kade.engine import execs
        req = execs.ExecRequest(argv=list(argv), env=list(env), workdir=workdir, user=user,
                                privileged=privileged, tty=tty, interactive=interactive,
                                detach=detach)
        return execs.run(self.engine, cid, req)

    # --- networks and volumes ------------------------------------------------------
    def create_network(self, name: str, *, driver: str = "bridge", internal: bool = False,
                       labels: dict | None = None, options: dict | None = None,
                       subnets=(), gateways=(), ipv6: bool = False) -> str:
        return self.engine.networks.create(name, driver=driver, subnets=subnets,
                                           gateways=gateways, internal=internal, ipv6=ipv6,
                                           labels=labels, options=options)

    def remove_network(self, name: str) -> None:
        self.engine.networks.remove(name)

    def inspect_network(self, name: str) -> dict | None:
        try:
            return self.engine.networks.get(name)
        except NotFound:
            return None

    def create_volume(self, name: str, *, labels: dict | None = None,
                      options: dict | None = None, driver: str = "local") -> dict:
        return self.engine.volumes.create(name, labels=labels, driver=driver, options=options)

    def remove_volume(self, name: str) -> None:
        self.engine.volumes.remove(name)

    def inspect_volume(self, name: str) -> dict | None:
        try:
            return self.engine.volumes.get(name)
        except NotFound:
            return None

    # --- images ---------------------------------------------------------------------
    def build(self, context: str, *, dockerfile: str | None, tags: list[str], args: dict,
              target: str | None, labels: dict, no_cache: bool, progress) -> str:
        from kade.engine.build import BuildRequest, build
        options: dict = {"build_args": args, "labels": labels, "no_cache": no_cache}
        if target:
            options["target"] = target
        req = BuildRequest(context, dockerfile, tags=tags, **options)
        return build(self.engine, req, progress)

    def pull(self, ref: str) -> None:
        from kade.engine.run import pull
        pull(self.engine, ref)

    def push(self, ref: str) -> None:
        from kade.engine.run import push
        push(self.engine, ref)

    def image_inspect(self, ref: str) -> dict | None:
        image_id = self.engine.images.try_resolve(ref)
        if image_id is None:
            return None
        return {"Id": image_id, "Config": self.engine.images.config(image_id)}

    def remove_image(self, ref: str) -> None:
        self.engine.remove_image(ref)

    # --- events ---------------------------------------------------------------------
    def events(self, since: float, follow: bool) -> Iterator[dict]:
        from kade.engine import stats
        until = None if follow else time.time()
        yield from stats.events(self.engine, since=since or None, until=until)


def all_match(have: dict, want: dict) -> bool:
    return all(k in have and (v is None or have[k] == v) for k, v in want.items())


def _summary(record: dict, state: dict) -> dict:
    from kade.engine.netview import ports_column
    return {"id": record["Id"], "name": record["Name"].lstrip("/"),
            "image": record["Config"].get("Image", ""),
            "labels": record["Config"].get("Labels") or {},
            "status": state.get("Status", ""),
            "health": (state.get("Health") or {}).get("Status", ""),
            "exit_code": int(state.get("ExitCode") or 0),
            "created": record.get("Created", ""),
            "command": " ".join([record.get("Path", "")] + list(record.get("Args") or [])),
            "ports": ports_column(record, state)}
