"""`system check`: verify the store; `--repair` removes what cannot be used."""

from __future__ import annotations

import os

from kade.oci import digest as dg
from kade.snapshots.base import EXTRACT, extraction_alive


def check(engine, repair: bool = False) -> list[str]:
    problems: list[str] = []
    problems += _blobs(engine, repair)
    problems += _images(engine, repair)
    problems += _snapshots(engine, repair)
    problems += _containers(engine, repair)
    problems += _kernel(engine, repair)
    if repair:
        from kade.engine.prune import collect_garbage
        collect_garbage(engine)
    return problems


def _blobs(engine, repair: bool) -> list[str]:
    out = []
    for d in list(engine.content.walk()):
        if not engine.content.verify(d):
            out.append(f'blob "{d}" does not match its digest')
            if repair:
                engine.content.delete(d)
    return out


def _images(engine, repair: bool) -> list[str]:
    out = []
    for image_id, _, rec in engine.db.images():
        missing = [d for d in [image_id, rec["manifest"]] + [lay["digest"] for lay in
                                                              rec["layers"]]
                   if not engine.content.exists(d)]
        chain = dg.chain_ids([lay["diff_id"] for lay in rec["layers"]])
        missing += [c for c in chain if not engine.snapshots.exists(c)]
        if missing:
            out.append(f'image "{image_id}" is missing {", ".join(missing)}')
            if repair:
                engine.db.delete_image(image_id)
    for name, image_id in engine.db.tags():
        if engine.db.get_image(image_id) is None:
            out.append(f'tag "{name}" points at missing image "{image_id}"')
            if repair:
                engine.db.delete_tag(name)
    return out


def _snapshots(engine, repair: bool) -> list[str]:
    out = []
    snaps = engine.snapshots
    container_ids = {cid for cid, _ in engine.db.container_ids()}
    removing = set()
    for info in snaps.walk():
        path = os.path.join(snaps.root, str(info.num), "fs")
        if not os.path.isdir(path) and os.path.isdir(os.path.join(snaps.root,
                                                                   f"{info.num}.removing")):
            # a removal renames the directory first and forgets the row last
            removing.add(f"{info.num}.removing")
            out.append(f'snapshot "{info.key}" was being removed by a process that died')
            if repair:
                with engine.db.tx() as c:
                    c.execute("DELETE FROM snapshots WHERE key=?", (info.key,))
        elif not os.path.isdir(path):
            out.append(f'snapshot "{info.key}" has no directory')
            if repair:
                with engine.db.tx() as c:
                    c.execute("DELETE FROM snapshots WHERE key=?", (info.key,))
        elif info.key.startswith(EXTRACT):
            if not extraction_alive(info.key):
                out.append(f'snapshot "{info.key}" is an unfinished layer extraction')
        elif info.kind == "active" and info.key not in container_ids:
            out.append(f'snapshot "{info.key}" is active but no container owns it')
    for info in snaps.orphans(engine.images.referenced_layers()):
        out.append(f'layer "{info.key}" is referenced by no image')
    for name in snaps.strays():
        if name in removing:
            continue  # said above, with the snapshot it was
        out.append(f'snapshot directory "{name}" is not in the metadata')
    return out


def _containers(engine, repair: bool) -> list[str]:
    from kade.engine.procs import owner_alive
    out = []
    for record, state in engine.db.containers():
        cid = record["Id"]
        if not engine.snapshots.exists(cid):
            out.append(f'container "{cid[:12]}" has no filesystem')
            if repair:
                engine.containers._destroy(cid, remove_volumes=False)
        for what, owner in (("was paused by a commit that died", state.get("PausedBy")),
                            ("was being removed by a process that died",
                             state.get("RemovingBy")),
                            ("belongs to a build that died",
                             record.get("Private", {}).get("Owner"))):
            if owner and not owner_alive(owner):
                out.append(f'container "{cid[:12]}" {what}')
    return out


# --- the store against the kernel -------------------------------------------------
def _kernel(engine, repair: bool) -> list[str]:
    """Containers whose recorded state disagrees with the kernel: running with no
    process, or with no supervisor watching; a process or cgroup or runtime state of
    a container recorded exited or removed."""
    from kade.engine.procs import pid_alive
    out: list[str] = []
    unwatched = []
    rows = {}
    for record, state in engine.db.containers():
        cid = record["Id"]
        rows[cid] = state
        if state["Status"] not in ("running", "paused", "restarting"):
            continue
        if pid_alive(state.get("MonitorPid", 0), state.get("MonitorStart")):
            continue
        if state["Status"] != "restarting" and not pid_alive(state.get("Pid", 0),
                                                             state.get("PidStart")):
            if not _supervisor_alive(engine):
                out.append(f'container "{cid[:12]}" is recorded {state["Status"]} but its '
                           "process is gone")
                if repair:
                    _record_lost_exit(engine, cid)
                continue
        out.append(f'container "{cid[:12]}" is {state["Status"]} but no supervisor watches it')
        unwatched.append(cid)
    out += _stray_processes(engine, rows, repair)
    if repair and unwatched:
        _readopt(engine)
    return out


def _supervisor_alive(engine) -> bool:
    from kade.engine.procs import supervisor_alive
    return supervisor_alive(engine.root)


def _record_lost_exit(engine, cid: str) -> None:
    from kade.engine import lifecycle
    from kade.errors import KadeError
    try:
        engine.runtime.delete(cid, force=True)
    except KadeError:
        pass
    lifecycle.mark_exited(engine, cid, 255)
    engine.db.update_state(cid, {"Error": "exit code lost: no supervisor ran when it exited"})


def _stray_processes(engine, rows: dict, repair: bool) -> list[str]:
    """Runtime state (with its init and cgroup) of containers recorded exited, or
    no longer recorded at all."""
    from kade.errors import KadeError
    from kade.runtime.cgroups import open_cgroup
    out = []
    for st in engine.runtime.list():
        cid, status = st["id"], st["status"]
        state = rows.get(cid)
        if state is None:
            out.append(f'runtime state of removed container "{cid[:12]}" is left ({status})')
        elif status in ("running", "paused") and state["Status"] not in (
                "running", "paused", "restarting"):
            out.append(f'container "{cid[:12]}" is recorded {state["Status"]} but its '
                       f"process runs (pid {st['pid']})")
        else:
            continue
        if repair:
            try:
                engine.runtime.delete(cid, force=True)
            except KadeError:
                pass
    containers_dir = os.path.join(engine.root, "containers")
    known = set(os.listdir(containers_dir)) if os.path.isdir(containers_dir) else set()
    for cid in sorted(known - set(rows)):
        cgroup = open_cgroup(f"/kade/{cid}")
        if cgroup.exists():
            out.append(f'cgroup of removed container "{cid[:12]}" is left')
            if repair:
                try:
                    cgroup.kill_all()
                    cgroup.destroy()
                except (KadeError, OSError):
                    pass
    return out


def _readopt(engine) -> None:
    """Have the root's supervisor (started if need be) adopt what nobody watches."""
    from kade.engine import monitorclient
    sock = monitorclient.connect(engine)
    try:
        monitorclient.send(sock, {"op": "adopt"})
        monitorclient.Reader(sock.fileno()).read()
    finally:
        sock.close()
