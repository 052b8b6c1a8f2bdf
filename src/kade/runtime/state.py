"""Container state on disk, between runtime calls that may come from different processes.

    <state_root>/                 e.g. <kade root>/runtime
      .seccomp/<hash>.bpf         compiled seccomp filters, shared by the containers of
                                  this root (kade.runtime.seccomp; never a container id)
      <id>/                       claimed by mkdir: it existing is what "creating" means
        state.json                written once create() has a set-up init (temp + rename;
                                  not fsynced: the container dies with the machine anyway)
        seccomp.bpf               the container's compiled seccomp filter, if any, for the
                                  processes exec'd into it: flags (u32 LE), then the BPF
        exec.fifo                 from create until start: it existing means "created"
        hooks.json                the startContainer, poststart and poststop hooks and
                                  the process, when the spec has any of those hooks
        host-mounts               without a mount namespace: the mount ids the container
                                  added at its rootfs in the caller's namespace, to undo

The status is never stored; it is derived each time (see `status`): the init is alive
(and is the same process: /proc/<pid>/stat start time as recorded), the cgroup is frozen,
the fifo is still there.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable

from kade import errors

TYPE_CHECKING = False  # typing costs the supervisor ~0.4 MB (kade.util.namedtuple)
if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from kade.util.namedtuple import NamedTuple

STATE_FILE = "state.json"
SECCOMP_FILE = "seccomp.bpf"
FIFO = "exec.fifo"
OCI_VERSION = "1.0.2"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")


class Record(NamedTuple):
    """What later calls need to know about a container."""
    id: str
    bundle: str
    pid: int
    pid_start: int              # field 22 of /proc/<pid>/stat: guards against pid reuse
    cgroups_path: str
    created: str                # RFC 3339, UTC
    annotations: dict[str, str]
    rootfs: str = ""
    oci_version: str = OCI_VERSION

    def oci_state(self, status: str) -> dict:
        """The runtime-spec state object (plus rootfs and created, as runc prints)."""
        return {"ociVersion": self.oci_version, "id": self.id, "status": status,
                "pid": self.pid if status != "stopped" else 0, "bundle": self.bundle,
                "rootfs": self.rootfs, "created": self.created,
                "annotations": dict(self.annotations)}


class StateDir:
    def __init__(self, state_root: str, id: str) -> None:
        if not _ID.match(id):
            raise errors.InvalidArgument(f'container id "{id}" is not valid: use letters, '
                                         "digits and _ . + - (at most 128)")
        self.id = id
        self.path = os.path.join(state_root, id)
        self.fifo = os.path.join(self.path, FIFO)

    def claim(self) -> None:
        """Create the directory and the fifo; AlreadyExists if the id is taken."""
        try:
            os.mkdir(self.path, 0o711)
        except FileNotFoundError:              # the first container under this root
            os.makedirs(os.path.dirname(self.path), 0o711, exist_ok=True)
            os.mkdir(self.path, 0o711)
        except FileExistsError:
            raise errors.AlreadyExists(f'container "{self.id}" already exists') from None
        os.mkfifo(self.fifo, 0o600)

    def exists(self) -> bool:
        return os.path.isdir(self.path)

    def save(self, record: Record) -> None:
        tmp = os.path.join(self.path, f".{STATE_FILE}.tmp")
        with open(tmp, "w") as f:
            f.write(json.dumps(record._asdict()))   # dumps: C encoder; dump is pure Python
        os.replace(tmp, os.path.join(self.path, STATE_FILE))

    def save_seccomp(self, prepared: tuple[bytes, int]) -> None:
        bpf, flags = prepared
        with open(os.path.join(self.path, SECCOMP_FILE), "wb") as f:
            f.write(flags.to_bytes(4, "little") + bpf)

    def load_seccomp(self) -> tuple[bytes, int] | None:
        try:
            with open(os.path.join(self.path, SECCOMP_FILE), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        return data[4:], int.from_bytes(data[:4], "little")

    def write(self, name: str, data: bytes) -> None:
        """A file of this container's, for later calls (hooks.json, host-mounts)."""
        with open(os.path.join(self.path, name), "wb") as f:
            f.write(data)

    def read(self, name: str) -> bytes | None:
        try:
            with open(os.path.join(self.path, name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def load(self) -> Record | None:
        """The record; None while the container is still being created."""
        try:
            with open(os.path.join(self.path, STATE_FILE)) as f:
                return Record(**json.load(f))
        except FileNotFoundError:
            if self.exists():
                return None
            raise errors.NotFound(f'container "{self.id}" does not exist') from None

    def has_fifo(self) -> bool:
        return os.path.lexists(self.fifo)

    def remove(self) -> None:
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return
        for name in names:
            os.unlink(os.path.join(self.path, name))
        os.rmdir(self.path)


def process_start_time(pid: int) -> int | None:
    """The start time of a live process; None if it is gone or only a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def status(record: Record, *, has_fifo: bool, frozen: Callable[[], bool]) -> str:
    if process_start_time(record.pid) != record.pid_start:
        return "stopped"
    if frozen():
        return "paused"
    return "created" if has_fifo else "running"


def write_pid_file(path: str, pid: int) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.replace(tmp, path)
