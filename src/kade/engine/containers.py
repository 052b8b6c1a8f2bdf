"""Containers: create, find, inspect, list, rename and remove.

State machine (docker's): created -> running <-> paused; running -> exited;
exited -> running (start/restart); any -> removing -> gone. `Status` is kept
in the state row and reconciled with the kernel on read: a container whose
monitor and process are both gone is exited, whatever the row says.
"""

from __future__ import annotations

import os

from kade.engine import records
from kade.engine.options import CreateOptions
from kade.engine.procs import me, owner_alive, pid_alive, supervisor_alive
from kade.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from kade.util import ids


# state keys of unfinished work, owned by a process: not for `inspect`
PRIVATE_STATE = ("MonitorPid", "MonitorStart", "PidStart", "ManualStop", "PausedBy",
                 "RemovingBy")


class Containers:
    def __init__(self, engine):
        self.engine = engine
        self.db = engine.db

    # --- finding --------------------------------------------------------------
    def resolve(self, ref: str) -> str:
        ref = ref.lstrip("/") if ref.startswith("/") else ref
        rows = self.db.container_ids()
        for cid, name in rows:
            if name == ref or cid == ref:
                return cid
        matches = [cid for cid, _ in rows if cid.startswith(ref)] if ref else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise Conflict(f"multiple containers found with provided prefix: {ref}")
        raise NotFound(f"no such container: {ref}")

    def bundle(self, cid: str) -> str:
        return os.path.join(self.engine.root, "containers", cid)

    def get(self, cid: str) -> tuple[dict, dict]:
        record, state = self.db.container(cid)
        return record, self._reconcile(cid, state)

    def state(self, cid: str) -> dict:
        return self.get(cid)[1]

    def _reconcile(self, cid: str, state: dict) -> dict:
        if state.get("PausedBy") and not owner_alive(state["PausedBy"]):
            state = self._thaw(cid, state)
        if state["Status"] not in ("running", "paused", "restarting"):
            return state
        monitor_ok = pid_alive(state.get("MonitorPid", 0), state.get("MonitorStart"))
        if monitor_ok or pid_alive(state.get("Pid", 0), state.get("PidStart")):
            return state
        if supervisor_alive(self.engine.root):
            return state  # its next worker re-adopts it and records the real exit code
        state = dict(state, Status="exited", Running=False, Paused=False, Restarting=False,
                     Pid=0, ExitCode=state.get("ExitCode") or 255,
                     FinishedAt=ids.now_rfc3339(), Error="monitor exited unexpectedly")
        self.db.save_state(cid, state)
        return state

    def _thaw(self, cid: str, state: dict) -> dict:
        """A container a `kade commit` paused, and the commit is dead: thaw it (docker's
        daemon would have, the commit being its own)."""
        from kade.engine import lifecycle
        from kade.errors import KadeError
        state = self.db.update_state(cid, {"PausedBy": None})
        try:
            if state["Paused"]:
                lifecycle.unpause(self.engine, cid)
            elif state["Running"]:
                # killed between the freeze and its record: the cgroup is frozen while
                # the store still says running
                lifecycle.thaw(self.engine, cid)
        except (KadeError, OSError):
            pass  # exited meanwhile, or another reader thawed it first
        return self.db.container(cid)[1]

    def _orphaned(self, record: dict, state: dict) -> bool:
        """Whether the container is what a dead process left: a removal it began, or a
        build step's container. Finished here, for the first reader that finds it."""
        owner = state.get("RemovingBy") or record.get("Private", {}).get("Owner")
        if not owner or owner_alive(owner):
            return False
        from kade.errors import KadeError
        try:
            self.remove(record["Id"], force=True, orphan=True)
        except (KadeError, OSError):
            pass  # another reader finishes it
        return True

    def list(self, all_: bool = True) -> list[tuple[dict, dict]]:
        out = []
        for record, state in self.db.containers():
            if ("RemovingBy" in state or "Owner" in record.get("Private", ())) \
                    and self._orphaned(record, state):
                continue
            state = self._reconcile(record["Id"], state)
            if all_ or state["Running"]:
                out.append((record, state))
        return out

    def inspect(self, cid: str) -> dict:
        record, state = self.get(cid)
        public = {k: v for k, v in state.items() if k[0].isupper() and k not in
                  PRIVATE_STATE}
        out = dict(record)
        from kade.engine.netview import network_settings
        out["NetworkSettings"] = network_settings(record, state)
        out["State"] = public
        out["Driver"] = self.engine.driver
        out["GraphDriver"] = self._graph_driver(cid)
        return out

    def _graph_driver(self, cid: str) -> dict:
        snaps = self.engine.snapshots
        try:
            mounts = snaps.mounts(cid)
        except NotFound:
            return {"Name": self.engine.driver, "Data": None}
        data = {}
        for opt in mounts[0].options:
            key, sep, value = opt.partition("=")
            if sep:
                data[{"lowerdir": "LowerDir", "upperdir": "UpperDir",
                      "workdir": "WorkDir"}.get(key, key)] = value
        data.setdefault("UpperDir", snaps.upper_dir(cid))
        data["MergedDir"] = os.path.join(self.bundle(cid), "rootfs")
        return {"Name": self.engine.driver, "Data": data}

    # --- creating -------------------------------------------------------------
    def create(self, opts: CreateOptions) -> str:
        """A container record, its writable snapshot and bundle; all or nothing."""
        engine = self.engine
        image_id = engine.images.resolve(opts.image)
        image_config = engine.images.config(image_id).get("config") or {}
        cid = ids.new_id()
        name = records.validate_name(opts.name) if opts.name else None
        record = records.new_record(cid, name or "", image_id, opts, image_config, engine.root)
        # an unknown network, a missing --link target: refused before anything exists
        record["NetworkSettings"]["Networks"] = engine.networks.settings_for(opts)
        volume_mounts = engine.volumes.plan(opts.mounts, image_config.get("Volumes") or {})
        record["Mounts"] = [m.inspect() for m in volume_mounts]
        record["Private"] = {"VolumeMounts": [m.to_json() for m in volume_mounts]}
        if opts.owner:  # a build step's: removed by whoever finds its build dead
            record["Private"]["Owner"] = opts.owner
        self._insert(record, name)
        try:
            self._materialise(cid, record, image_id)
        except BaseException:
            self._destroy(cid, remove_volumes=True)
            raise
        engine.emit("container", "create", cid, {"name": record["Name"][1:],
                                                  "image": opts.image}, record=record)
        return cid

    def _insert(self, record: dict, name: str | None) -> None:
        for attempt in range(5):
            record["Name"] = "/" + (name or ids.random_name(attempt))
            try:
                self.db.add_container(record["Id"], record["Name"][1:], _now(),
                                      record["Image"], record, records.initial_state())
                return
            except AlreadyExists:
                if name:
                    other = self.resolve(name)
                    raise Conflict(f'conflict: the container name "/{name}" is already in use'
                                   f' by container "{other}". you have to remove (or rename)'
                                   " that container to be able to reuse that name.") from None
        raise Conflict("could not pick a free container name")

    def _materialise(self, cid: str, record: dict, image_id: str) -> None:
        from kade.engine import spec
        engine = self.engine
        bundle = self.bundle(cid)
        try:
            os.mkdir(bundle)  # the id is new: so is its bundle
        except FileNotFoundError:
            os.makedirs(bundle)  # the root's first container
        os.mkdir(os.path.join(bundle, "rootfs"))
        engine.snapshots.prepare(cid, engine.images.top_layer(image_id))
        cfg, host = record["Config"], record["HostConfig"]
        spec.write_new(record["HostnamePath"], cfg["Hostname"] + "\n")
        spec.write_new(record["HostsPath"],
                       spec.hosts_file(cfg["Hostname"], host.get("ExtraHosts") or []))
        spec.write_new(record["ResolvConfPath"], spec.resolv_conf(
            host.get("Dns") or [], host.get("DnsSearch") or (), host.get("DnsOptions") or (),
            mode=_resolv_mode(record)))
        engine.volumes.prepare(_vol_mounts(record), lambda fn: _in_layers(engine, cid, fn))

    # --- renaming and removing -------------------------------------------------
    def rename(self, ref: str, new_name: str) -> None:
        cid = self.resolve(ref)
        new_name = records.validate_name(new_name)
        record, _ = self.get(cid)
        old = record["Name"]
        if old == "/" + new_name:
            raise InvalidArgument(f"renaming a container with the same name as its current "
                                  f"name: {new_name}")
        record["Name"] = "/" + new_name
        try:
            self.db.save_record(cid, record)
        except Exception as e:
            if "UNIQUE" in str(e):
                raise Conflict(f'conflict: the container name "/{new_name}" is already in use'
                               ) from None
            raise
        self.engine.emit("container", "rename", cid, {"oldName": old, "name": new_name})

    def remove(self, ref: str, force: bool = False, volumes: bool = False, *,
               orphan: bool = False) -> str:
        """Docker's rm. Of many removing one container at once, exactly one does:
        it claims the removal (state RemovingBy) first, and the others find the
        container gone, as docker's do. A claim whose owner died is taken over."""
        from kade.engine import lifecycle
        cid = self.resolve(ref)
        try:
            record, state = self.db.container(cid) if orphan else self.get(cid)
        except NotFound:  # another remover won between resolve and get: name what was asked
            raise NotFound(f"no such container: {ref}") from None
        active = state["Running"] or state["Status"] in ("paused", "restarting")
        if active and not force:
            raise Conflict(f"you cannot remove a {state['Status']} container {cid}. "
                           "stop the container before attempting removal or force remove")
        if not self.db.claim(cid, "RemovingBy", me(), owner_alive):
            raise NotFound(f"no such container: {ref}")
        if active:
            try:
                lifecycle.kill(self.engine, cid, 9, wait=True, manual=True)
            except Conflict:
                pass  # it exited meanwhile
        self._destroy(cid, remove_volumes=volumes)
        self.engine.emit("container", "destroy", cid, _event_attrs(record))
        return cid

    def _destroy(self, cid: str, remove_volumes: bool) -> None:
        """Idempotent teardown: runtime state, snapshot, bundle, then the row."""
        engine = self.engine
        try:
            record, _ = self.db.container(cid)
        except NotFound:
            record = None
        try:
            engine.runtime.delete(cid, force=True)
        except NotFound:
            pass
        if engine.snapshots.exists(cid):
            engine.snapshots.remove(cid)
        from kade.util.fs import remove_tree  # fcntl, contextlib: not for `ps`
        remove_tree(self.bundle(cid))
        self.db.release(cid)  # a lease a killed start left
        if record and remove_volumes:
            self.db.delete_container(cid)  # first: the volumes are in use until it is gone
            engine.volumes.remove_anonymous(_vol_mounts(record))
        self.db.delete_container(cid)


    # --- --rm: gone at once for every reader, cleaned up after -------------------
    def unlist(self, cid: str, record: dict) -> str | None:
        """The first half of removing an exited --rm container: its row and its
        writable layer's row go in one transaction, so `ps -a`, `rmi` (which must not
        find the layer's child) and prune see it gone the moment `kade run` returns;
        then its anonymous volumes. Returns the layer's directory, which `purge`
        removes with the bundle, runtime state and cgroups after the exit code went
        out. If the supervisor dies in between, `system prune` removes what no row
        knows any more (collect_garbage)."""
        engine = self.engine
        snaps = engine.snapshots
        try:
            layer = snaps.dir_of(cid)
        except NotFound:
            layer = None
        with self.db.tx() as c:
            c.execute("DELETE FROM snapshots WHERE key=? AND NOT EXISTS"
                      " (SELECT 1 FROM snapshots WHERE parent=?)", (cid, cid))
            self.db.delete_container(cid)
            engine.emit("container", "destroy", cid, record=record)
        vols = _vol_mounts(record)
        if vols:
            engine.volumes.remove_anonymous(vols)
        return layer

    def purge(self, cid: str, layer: str | None) -> None:
        """The second half: what `unlist` left of the container."""
        engine = self.engine
        try:
            engine.runtime.delete(cid, force=True)
        except NotFound:
            pass
        if engine.snapshots.exists(cid):  # it had a child (never, in practice): keep it
            layer = None
        for path in (layer, self.bundle(cid)):
            if path:
                from kade.util.fs import remove_tree
                remove_tree(path)


def _vol_mounts(record: dict) -> list:
    from kade.volumes import PlannedMount
    return [PlannedMount.from_json(m) for m in record.get("Private", {}).get("VolumeMounts", [])]


def _in_layers(engine, cid: str, fn) -> None:
    """fn(top) with the container's layers at top (volume copy-up); the file helpers
    load only when a volume needs them, not on every create."""
    from kade.engine import files
    files.run_in_layers(engine, cid, fn)


def _now() -> float:
    import time
    return time.time()


def _event_attrs(record: dict) -> dict:
    """What events say of a container that is already gone from the database."""
    cfg = record["Config"]
    return {**(cfg.get("Labels") or {}), "image": cfg.get("Image", ""),
            "name": record["Name"].lstrip("/")}


def _resolv_mode(record: dict) -> str:
    mode = record["HostConfig"].get("NetworkMode") or "default"
    if mode == "host":
        return "host"
    nets = list((record.get("NetworkSettings") or {}).get("Networks") or {})
    return "user" if nets and nets[0] not in ("bridge", "none") else "bridge"
