"""Apply a Project through a Backend: docker compose's convergence.

    up      networks, volumes (created once, labelled) -> images (build or pull)
            -> containers, one thread per service, each waiting for its
            depends_on conditions; a service's containers are kept when their
            config-hash label matches, else recreated; replicas past the scale go
    down    containers (reverse dependency order) -> networks -> volumes (-v) -> images

Every step looks at what exists first, by name and label, so a `kade compose up`
killed at any moment leaves a state the next `up` completes and `down` removes.
"""

from __future__ import annotations

import os
import threading
from functools import partial
from typing import Callable

from kade.compose import convert
from kade.compose.convert import HASH, NUMBER, ONEOFF, PROJECT, SERVICE
from kade.errors import FailedPrecondition, InvalidArgument, KadeError


class UpOptions:
    def __init__(self, **kw):
        self.build = kw.get("build", False)
        self.no_build = kw.get("no_build", False)
        self.force_recreate = kw.get("force_recreate", False)
        self.no_recreate = kw.get("no_recreate", False)
        self.no_deps = kw.get("no_deps", False)
        self.scale: dict[str, int] = kw.get("scale") or {}
        self.remove_orphans = kw.get("remove_orphans", False)
        self.no_start = kw.get("no_start", False)
        self.pull = kw.get("pull", "policy")
        self.timeout = kw.get("timeout")
        self.services: list[str] = kw.get("services") or []


class Progress:
    """Where apply reports: `event(kind, name, status)` (Network demo_default Created)."""

    def event(self, kind: str, name: str, status: str, done: bool = False) -> None: ...
    def warn(self, text: str) -> None: ...


class Applier:
    def __init__(self, project, backend, progress: Progress | None = None):
        self.project = project
        self.backend = backend
        self.progress = progress or Progress()
        self._lock = threading.Lock()

    # --- what exists --------------------------------------------------------------
    def containers(self, service: str | None = None, oneoff: bool | None = False,
                   all: bool = True) -> list[dict]:
        want = {PROJECT: self.project.name}
        if service:
            want[SERVICE] = service
        found = self.backend.list_containers(want, all)
        if oneoff is not None:
            flag = "True" if oneoff else "False"
            found = [c for c in found if c["labels"].get(ONEOFF, "False") == flag]
        return sorted(found, key=lambda c: (c["labels"].get(SERVICE, ""), _number(c)))

    def orphans(self) -> list[dict]:
        known = set(self.project.services) | set(self.project.disabled)
        return [c for c in self.containers(oneoff=None)
                if c["labels"].get(SERVICE) not in known]

    # --- checks before anything is made ---------------------------------------------
    def check(self, services: list[str]) -> None:
        for name in services:
            convert.check_service(name, self.project.services[name])
        for kind in ("networks", "volumes"):
            for key, res in self.project.resources(kind).items():
                driver = res.get("driver")
                allowed = ("bridge",) if kind == "networks" else ("local",)
                if driver and driver not in allowed:
                    raise InvalidArgument(f'{kind[:-1]} "{key}": driver "{driver}" is not '
                                          "supported by kade compose")

    # --- networks and volumes ------------------------------------------------------
    def ensure_networks(self, services: list[str]) -> None:
        used = {k for s in services for k in self.project.services[s].get("networks") or {}}
        for key in sorted(used):
            self._network(key, self.project.resources("networks")[key])

    def _network(self, key: str, res: dict) -> None:
        name = res["name"]
        have = self.backend.inspect_network(name)
        if res.get("external"):
            if have is None:
                raise FailedPrecondition(f"network {name} declared as external, but could "
                                         "not be found")
            return
        if have is not None:
            return
        self.progress.event("Network", name, "Creating")
        ipam = (res.get("ipam") or {}).get("config") or []
        self.backend.create_network(
            name, driver=res.get("driver") or "bridge", internal=bool(res.get("internal")),
            labels=convert.resource_labels(self.project, "networks", key, res.get("labels")),
            options=res.get("driver_opts"), subnets=[c["subnet"] for c in ipam
                                                     if c.get("subnet")],
            gateways=[c["gateway"] for c in ipam if c.get("gateway")],
            ipv6=bool(res.get("enable_ipv6")))
        self.progress.event("Network", name, "Created", True)

    def ensure_volumes(self, services: list[str]) -> None:
        used = {v["source"] for s in services for v in self.project.services[s].get("volumes")
                or () if v["type"] == "volume" and v.get("source")}
        for key in sorted(used):
            res = self.project.resources("volumes")[key]
            name = res["name"]
            have = self.backend.inspect_volume(name)
            if res.get("external"):
                if have is None:
                    raise FailedPrecondition(f"external volume \"{name}\" not found")
                continue
            if have is None:
                self.progress.event("Volume", name, "Creating")
                self.backend.create_volume(name, labels=convert.resource_labels(
                    self.project, "volumes", key, res.get("labels")),
                    options=res.get("driver_opts"))
                self.progress.event("Volume", name, "Created", True)

    # --- images -------------------------------------------------------------------
    def ensure_images(self, services: list[str], opts: UpOptions, build_progress) -> dict:
        """service -> image id."""
        out = {}
        for name in services:
            svc = self.project.services[name]
            ref = self.project.image(name)
            have = self.backend.image_inspect(ref)
            policy = opts.pull if opts.pull != "policy" else svc.get("pull_policy", "missing")
            if svc.get("build") and not opts.no_build and (
                    opts.build or have is None or policy == "build"):
                out[name] = self.build(name, build_progress)
                continue
            if have is None or policy == "always":
                if policy == "never" or svc.get("build"):
                    raise FailedPrecondition(f'service "{name}": image "{ref}" not found '
                                             "(and not to be built or pulled)")
                self.progress.event("Image", ref, "Pulling")
                self.backend.pull(ref)
                self.progress.event("Image", ref, "Pulled", True)
                have = self.backend.image_inspect(ref)
            out[name] = have["Id"]
        return out

    def build(self, name: str, progress) -> str:
        b = self.project.services[name]["build"]
        context = b.get("context") or self.project.working_dir
        dockerfile = b.get("dockerfile")
        if b.get("dockerfile_inline"):
            raise InvalidArgument(f'service "{name}": build.dockerfile_inline is not '
                                  "supported by kade compose yet")
        if dockerfile and not os.path.isabs(dockerfile):
            dockerfile = os.path.join(context, dockerfile)
        return self.backend.build(context, dockerfile=dockerfile,
                                  tags=[self.project.image(name)] + list(b.get("tags") or ()),
                                  args={k: v for k, v in (b.get("args") or {}).items()
                                        if v is not None},
                                  target=b.get("target"), labels=b.get("labels") or {},
                                  no_cache=bool(b.get("no_cache")), progress=progress)

    # --- containers ---------------------------------------------------------------
    def scale_of(self, name: str, opts: UpOptions) -> int:
        if name in opts.scale:
            return opts.scale[name]
        svc = self.project.services[name]
        if svc.get("scale") is not None:
            return int(svc["scale"])
        return int((svc.get("deploy") or {}).get("replicas") or 1)

    def converge(self, services: list[str], images: dict, opts: UpOptions) -> None:
        """Every service's containers, in threads along the dependency graph."""
        graph = Graph(self.project, services, follow=not opts.no_deps)
        self.backend.before_threads()

        def work(name: str) -> None:
            self.wait_dependencies(name, graph)
            self.converge_service(name, images[name], opts)
        graph.run(work)

    def converge_service(self, name: str, image_id: str, opts: UpOptions) -> list[str]:
        want = self.scale_of(name, opts)
        digest = self.project.config_hash(name)
        existing = {_number(c): c for c in self.containers(name)}
        ids = []
        for number in sorted(existing):
            if number > want:
                self._remove(existing[number], opts.timeout)
        for number in range(1, want + 1):
            c = existing.get(number)
            stale = c is not None and (opts.force_recreate or (
                not opts.no_recreate and (c["labels"].get(HASH) != digest
                                          or c["labels"].get(convert.IMAGE) != image_id)))
            if c is not None and stale:
                self._remove(c, opts.timeout, recreate=True)
                c = None
            if c is None:
                cid = self._create(name, number, image_id)
            else:
                cid = c["id"]
                if c["status"] == "running":
                    self.progress.event("Container", c["name"], "Running", True)
            ids.append(cid)
            if not opts.no_start:
                self._start(cid, convert.container_name(self.project, name, number))
        return ids

    def _create(self, name: str, number: int, image_id: str, **kw) -> str:
        cname = convert.container_name(self.project, name, number)
        self.progress.event("Container", cname, "Creating")
        options, networks = convert.create_options(self.project, name, number, image_id,
                                                   peers=self.peer, **kw)
        _bind_dirs(options["mounts"])
        cid = self.backend.create_container(options, networks)
        self.progress.event("Container", cname, "Created", True)
        return cid

    def _start(self, cid: str, cname: str) -> None:
        info = self.backend.inspect_container(cid)
        if info["State"]["Running"]:
            return
        self.progress.event("Container", cname, "Starting")
        self.backend.start_container(cid)
        self.progress.event("Container", cname, "Started", True)

    def _remove(self, c: dict, timeout: int | None, recreate: bool = False) -> None:
        self.progress.event("Container", c["name"], "Recreate" if recreate else "Stopping")
        if c["status"] in ("running", "paused", "restarting"):
            self.backend.stop_container(c["id"], timeout)
        self.backend.remove_container(c["id"], force=True)
        self.progress.event("Container", c["name"], "Recreated" if recreate else "Removed",
                            True)

    def peer(self, service: str) -> str:
        found = self.containers(service)
        if not found:
            raise FailedPrecondition(f'service "{service}" has no container to share a '
                                     "network namespace with")
        return found[0]["id"]

    # --- dependencies ---------------------------------------------------------------
    def wait_dependencies(self, name: str, graph: "Graph") -> None:
        for dep, cond in (self.project.services[name].get("depends_on") or {}).items():
            if dep not in self.project.services:
                if cond.get("required", True):
                    raise FailedPrecondition(f'service "{name}" depends on undefined '
                                             f'service "{dep}"')
                continue
            condition = cond.get("condition", "service_started")
            for c in self.containers(dep):
                self.wait_condition(dep, c, condition, graph)

    def wait_condition(self, service: str, c: dict, condition: str, graph) -> None:
        import time
        label = {"service_healthy": "Healthy", "service_completed_successfully": "Exited"}
        if condition == "service_started":
            return
        self.progress.event("Container", c["name"], "Waiting")
        while not graph.failed.is_set():
            state = self.backend.inspect_container(c["id"])["State"]
            health = (state.get("Health") or {}).get("Status")
            if condition == "service_healthy":
                if health == "healthy":
                    break
                if health == "unhealthy" or not (state["Running"] or
                                                  state["Status"] == "restarting"):
                    self._dependency_failed(c, "is unhealthy" if health == "unhealthy"
                                            else "exited")
                if not state.get("Health"):
                    break  # no health check: started is as good as it gets
            else:
                if not state["Running"] and state["Status"] in ("exited", "dead"):
                    if state.get("ExitCode"):
                        self._dependency_failed(c, f"didn't complete successfully: exit "
                                                   f"{state['ExitCode']}")
                    break
            time.sleep(0.1)
        self.progress.event("Container", c["name"], label[condition], True)

    def _dependency_failed(self, c: dict, why: str) -> None:
        lines = [e.get("log", "") for e in self.backend.container_logs(c["id"], tail=5)]
        tail = "".join(lines).rstrip("\n")
        text = f"dependency failed to start: container {c['name']} {why}"
        raise FailedPrecondition(text + (f"\n{c['name']} last output:\n{tail}" if tail else ""))

    # --- down -----------------------------------------------------------------------
    def down(self, timeout: int | None, volumes: bool, remove_orphans: bool,
             rmi: str | None) -> None:
        known = set(self.project.services) | set(self.project.disabled)
        found = [c for c in self.containers(oneoff=None)
                 if remove_orphans or c["labels"].get(SERVICE) in known
                 or c["labels"].get(ONEOFF) == "True"]
        orphans = [c["name"] for c in self.containers(oneoff=False)
                   if c["labels"].get(SERVICE) not in known]
        if orphans and not remove_orphans:
            self.progress.warn(orphan_warning(self.project.name, orphans))
        # dependents first: a service stops before what it depends on
        order = Graph(self.project, list(self.project.services)).order()
        rank = {n: i for i, n in enumerate(order)}
        for level in sorted({rank.get(c["labels"].get(SERVICE), -1) for c in found},
                            reverse=True):
            _parallel([partial(self._stop_remove, c, timeout, volumes) for c in found
                       if rank.get(c["labels"].get(SERVICE), -1) == level])
        for key, res in self.project.resources("networks").items():
            self._remove_network(key, res)
        if volumes:
            for key, res in self.project.resources("volumes").items():
                self._remove_volume(key, res)
        if rmi:
            self._remove_images(rmi)

    def _stop_remove(self, c: dict, timeout: int | None, volumes: bool) -> None:
        if c["status"] in ("running", "paused", "restarting"):
            self.progress.event("Container", c["name"], "Stopping")
            self.backend.stop_container(c["id"], timeout)
            self.progress.event("Container", c["name"], "Stopped", True)
        self.progress.event("Container", c["name"], "Removing")
        self.backend.remove_container(c["id"], force=True, volumes=volumes)
        self.progress.event("Container", c["name"], "Removed", True)

    def _remove_network(self, key: str, res: dict) -> None:
        have = self.backend.inspect_network(res["name"])
        if res.get("external") or have is None or \
                (have.get("Labels") or {}).get(PROJECT) != self.project.name:
            return
        self.progress.event("Network", res["name"], "Removing")
        self.backend.remove_network(res["name"])
        self.progress.event("Network", res["name"], "Removed", True)

    def _remove_volume(self, key: str, res: dict) -> None:
        have = self.backend.inspect_volume(res["name"])
        if res.get("external") or have is None or \
                (have.get("Labels") or {}).get(PROJECT) != self.project.name:
            return
        self.progress.event("Volume", res["name"], "Removing")
        self.backend.remove_volume(res["name"])
        self.progress.event("Volume", res["name"], "Removed", True)

    def _remove_images(self, rmi: str) -> None:
        for name, svc in self.project.services.items():
            if rmi == "local" and svc.get("image"):
                continue
            ref = self.project.image(name)
            if self.backend.image_inspect(ref) is None:
                continue
            self.progress.event("Image", ref, "Removing")
            try:
                self.backend.remove_image(ref)
            except KadeError as e:
                self.progress.warn(str(e))
                continue
            self.progress.event("Image", ref, "Removed", True)


def orphan_warning(project: str, names: list[str]) -> str:
    return (f"Found orphan containers ([{' '.join(names)}]) for this project. If you "
            "removed or renamed this service in your compose file, you can run this "
            "command with the --remove-orphans flag to clean it up.")


def _number(c: dict) -> int:
    try:
        return int(c["labels"].get(NUMBER, "0"))
    except ValueError:
        return 0


def _bind_dirs(mounts: list[dict]) -> None:
    """compose creates a missing bind source as a directory (create_host_path)."""
    for m in mounts:
        if m["type"] == "bind" and not os.path.exists(m["source"]):
            os.makedirs(m["source"], exist_ok=True)


def _parallel(jobs: list[Callable[[], None]]) -> None:
    errors: list[BaseException] = []

    def guard(job):
        try:
            job()
        except BaseException as e:  # re-raised in the caller's thread
            errors.append(e)
    threads = [threading.Thread(target=guard, args=(j,), daemon=True) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


class Graph:
    """The services to bring up (with what they depend on unless no_deps), and a
    runner that starts each in a thread once its dependencies are done."""

    def __init__(self, project, services: list[str], follow: bool = True):
        self.project = project
        self.nodes: list[str] = []
        todo = list(services)
        while todo:
            name = todo.pop(0)
            if name in self.nodes:
                continue
            self.nodes.append(name)
            if follow:
                todo += [d for d in self.deps(name) if d in project.services]
        self.failed = threading.Event()

    def deps(self, name: str) -> list[str]:
        return [d for d in self.project.services[name].get("depends_on") or {}
                if d in self.nodes or d in self.project.services]

    def run(self, work: Callable[[str], None]) -> None:
        done = {n: threading.Event() for n in self.nodes}
        errors: list[BaseException] = []

        def one(name: str) -> None:
            try:
                for dep in self.deps(name):
                    if dep in done:
                        done[dep].wait()
                if not self.failed.is_set():
                    work(name)
            except BaseException as e:
                errors.append(e)
                self.failed.set()
            finally:
                done[name].set()
        threads = [threading.Thread(target=one, args=(n,), daemon=True) for n in self.nodes]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.2)  # a join with a timeout lets Ctrl-C through
        if errors:
            raise errors[0]

    def order(self) -> list[str]:
        """Dependencies first."""
        out: list[str] = []

        def visit(n: str) -> None:
            if n in out:
                return
            for d in self.deps(n):
                if d in self.nodes:
                    visit(d)
            out.append(n)
        for n in self.nodes:
            visit(n)
        return out
