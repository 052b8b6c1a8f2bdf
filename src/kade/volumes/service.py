"""The local volume driver and the planning of a container's mounts."""

from __future__ import annotations

import os
import time

from kade.errors import Conflict, InvalidArgument, NotFound
from kade.util.ids import new_id, now_rfc3339
from kade.util.fs import du

TYPE_CHECKING = False  # sqlite3 stays unimported until a database is opened
if TYPE_CHECKING:
    from kade.metadata import DB

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _valid_name(name: str) -> bool:
    """docker's [a-zA-Z0-9][a-zA-Z0-9_.-]+, without importing re on every run."""
    return len(name) > 1 and name[0].isascii() and name[0].isalnum() and \
        set(name) <= _NAME_CHARS


class PlannedMount:
    """One mount of a container as planned at create; type is bind, volume or tmpfs."""

    FIELDS = ("type", "source", "destination", "readonly", "name", "anonymous", "copy_up",
              "options")

    def __init__(self, type: str, source: str, destination: str, readonly: bool = False,
                 name: str = "", anonymous: bool = False, copy_up: bool = False,
                 options: dict | None = None):
        self.type, self.source, self.destination = type, source, destination
        self.readonly, self.name, self.anonymous = readonly, name, anonymous
        self.copy_up, self.options = copy_up, dict(options or {})

    def __eq__(self, other) -> bool:
        return isinstance(other, PlannedMount) and self.to_json() == other.to_json()

    def to_json(self) -> dict:
        return {f: getattr(self, f) for f in self.FIELDS}

    @classmethod
    def from_json(cls, d: dict) -> "PlannedMount":
        return cls(**d)

    def inspect(self) -> dict:
        out = {"Type": self.type, "Source": self.source, "Destination": self.destination,
               "Mode": "" if self.type == "tmpfs" else ("ro" if self.readonly else ""),
               "RW": not self.readonly, "Propagation": "rprivate" if self.type == "bind"
               else ""}
        if self.type == "volume":
            out = {"Type": "volume", "Name": self.name, **{k: v for k, v in out.items()
                                                           if k != "Type"}, "Driver": "local"}
        return out

    def oci(self) -> dict:
        if self.type == "tmpfs":
            opts = ["nosuid", "nodev", "noexec"] + [f"{k}={v}" for k, v in self.options.items()
                                                    if k in ("size", "mode")]
            return {"destination": self.destination, "type": "tmpfs", "source": "tmpfs",
                    "options": opts + (["ro"] if self.readonly else [])}
        opts = ["rbind", "rprivate", "ro" if self.readonly else "rw"]
        return {"destination": self.destination, "type": "bind", "source": self.source,
                "options": opts}


def _check_target(target: str, kind: str) -> str:
    if not target.startswith("/"):
        raise InvalidArgument(f'invalid mount config for type "{kind}": invalid mount path: '
                              f"'{target}' mount path must be absolute")
    if os.path.normpath(target) == "/":
        raise InvalidArgument(f'invalid mount config for type "{kind}": invalid specification:'
                              " destination can't be '/'")
    return os.path.normpath(target)


def _mount_spec(type_, target, source="", readonly=False, options=None):
    return {"type": type_, "target": target, "source": source, "readonly": readonly,
            "options": options or {}}


def parse_volume(text: str) -> dict:
    """`-v SRC:DST[:MODE]` or `-v DST`, docker's -v grammar -> mount spec dict."""
    parts = text.split(":")
    if len(parts) == 1:
        return _mount_spec("volume", _check_target(parts[0], "volume"))
    if len(parts) > 3 or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid spec: {text}: too many colons" if len(parts) > 3
                              else f"invalid spec: {text}")
    mode = parts[2] if len(parts) == 3 else ""
    flags = set(mode.split(",")) if mode else set()
    if flags - {"ro", "rw", "z", "Z", "shared", "rshared", "slave", "rslave", "private",
                "rprivate", "nocopy"}:
        raise InvalidArgument(f'invalid mode: {mode}')
    src, dst = parts[0], parts[1]
    kind = "bind" if src.startswith(("/", ".")) else "volume"
    if kind == "bind":
        src = os.path.abspath(src)
    else:
        _check_volume_name(src)
    opts = {"nocopy": True} if "nocopy" in flags else {}
    return _mount_spec(kind, _check_target(dst, kind), src, "ro" in flags, opts)


# docker's --mount keys (cli/opts/mount.go); consistency, propagation, the volume
# driver's label and options are accepted and have no effect here
MOUNT_KEYS = {"type", "source", "src", "target", "destination", "dst", "readonly", "ro",
              "consistency", "bind-propagation", "bind-nonrecursive", "volume-driver",
              "volume-label", "volume-opt", "volume-nocopy", "tmpfs-size", "tmpfs-mode"}


def parse_mount(text: str) -> dict:
    """`--mount type=bind,source=/a,target=/b,readonly` -> mount spec dict."""
    fields: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if key not in MOUNT_KEYS:
            raise InvalidArgument(f'invalid argument "{text}" for "--mount" flag: '
                                  f"unexpected key '{key}' in '{item}'")
        fields[key] = value if sep else "true"
    kind = fields.pop("type", "volume")
    if kind not in ("bind", "volume", "tmpfs"):
        raise InvalidArgument(f'invalid mount config: mount type "{kind}" is not supported')
    target = fields.pop("target", fields.pop("destination", fields.pop("dst", "")))
    if not target:
        raise InvalidArgument(f'invalid mount config for type "{kind}": field Target must '
                              "not be empty")
    source = fields.pop("source", fields.pop("src", ""))
    readonly = fields.pop("readonly", fields.pop("ro", "false")) in ("true", "1", "")
    opts = {}
    if kind == "bind":
        if not source:
            raise InvalidArgument('invalid mount config for type "bind": field Source must '
                                  "not be empty")
        source = os.path.abspath(source)
        if not os.path.exists(source):
            raise InvalidArgument('invalid mount config for type "bind": bind source path '
                                  f"does not exist: {source}")
    elif kind == "volume" and source:
        _check_volume_name(source)
    if kind == "tmpfs":
        opts = _tmpfs_opts(fields.pop("tmpfs-size", ""), fields.pop("tmpfs-mode", ""))
    if fields.pop("volume-nocopy", "false") == "true":
        opts["nocopy"] = True
    return _mount_spec(kind, _check_target(target, kind), source, readonly, opts)


def parse_tmpfs(text: str) -> dict:
    target, _, raw = text.partition(":")
    opts: dict = {"raw": raw}
    for item in filter(None, raw.split(",")):
        key, _, value = item.partition("=")
        if key in ("size", "mode"):
            opts[key] = value
    return _mount_spec("tmpfs", _check_target(target, "tmpfs"), "", "ro" in raw.split(","),
                       opts)


def _tmpfs_opts(size: str, mode: str) -> dict:
    opts = {}
    if size:
        opts["size"] = size
    if mode:
        opts["mode"] = mode
    return opts


def _check_volume_name(name: str) -> str:
    if not _valid_name(name):
        raise InvalidArgument(f'"{name}" includes invalid characters for a local volume name, '
                              "only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. if you intended "
                              "to pass a host directory, use absolute path")
    return name


class VolumeService:
    def __init__(self, root: str, db: DB):
        self.base = os.path.join(root, "volumes")
        self.db = db

    def path(self, name: str) -> str:
        return os.path.join(self.base, name, "_data")

    # --- the local driver -----------------------------------------------------
    def create(self, name: str | None = None, labels: dict | None = None,
               driver: str = "local", options: dict | None = None,
               anonymous: bool = False) -> dict:
        if driver != "local":
            raise NotFound(f"plugin \"{driver}\" not found")
        name = _check_volume_name(name) if name else new_id()
        existing = self.db.get_volume(name)
        if existing:
            return existing
        os.makedirs(self.path(name), mode=0o755, exist_ok=True)
        labels = dict(labels or {})
        if anonymous:
            labels["com.docker.volume.anonymous"] = ""
        rec = {"CreatedAt": now_rfc3339(), "Driver": driver, "Labels": labels,
               "Mountpoint": self.path(name), "Name": name, "Options": options or {},
               "Scope": "local"}
        self.db.put_volume(name, time.time(), rec)
        return rec

    def get(self, name: str) -> dict:
        rec = self.db.get_volume(name)
        if rec is None:
            raise NotFound(f"get {name}: no such volume")
        return rec

    def list(self) -> list[dict]:
        return self.db.volumes()

    def users(self, name: str) -> list[str]:
        out = []
        for record, _ in self.db.containers():
            for m in record.get("Private", {}).get("VolumeMounts", []):
                if m["type"] == "volume" and m["name"] == name:
                    out.append(record["Id"])
        return out

    def remove(self, name: str, force: bool = False) -> None:
        self.get(name)
        users = self.users(name)
        if users and not force:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        import shutil
        shutil.rmtree(os.path.join(self.base, name), ignore_errors=True)
        self.db.delete_volume(name)

    def prune(self, all_: bool = False, match=None) -> tuple[list[str], int]:
        """Unused anonymous volumes (all_: every unused one); match(created, labels)
        narrows them (docker's label filters)."""
        removed, space = [], 0
        for rec in self.list():
            anonymous = "com.docker.volume.anonymous" in (rec.get("Labels") or {})
            if match is not None and not match(0.0, rec.get("Labels")):
                continue
            if (all_ or anonymous) and not self.users(rec["Name"]):
                space += du(self.path(rec["Name"]))
                self.remove(rec["Name"])
                removed.append(rec["Name"])
        return removed, space

    # --- planning a container's mounts -----------------------------------------
    def plan(self, specs: list, image_volumes: dict) -> list[PlannedMount]:
        """User mounts, then anonymous volumes for uncovered image VOLUMEs."""
        out: list[PlannedMount] = []
        for spec in specs:
            out.append(self._plan_one(spec))
        covered = {m.destination for m in out}
        for path in sorted(image_volumes):
            if os.path.normpath(path) not in covered:
                out.append(self._plan_one(_mount_spec("volume", os.path.normpath(path))))
        seen: set[str] = set()
        for m in out:
            if m.destination in seen:
                raise InvalidArgument(f"duplicate mount point: {m.destination}")
            seen.add(m.destination)
        return out

    def _plan_one(self, s: dict) -> PlannedMount:
        kind, opts = s["type"], dict(s.get("options") or {})
        if kind == "bind":
            if not os.path.exists(s["source"]):
                os.makedirs(s["source"], exist_ok=True)  # docker's -v creates it
            return PlannedMount("bind", s["source"], s["target"], s["readonly"])
        if kind == "tmpfs":
            return PlannedMount("tmpfs", "", s["target"], s["readonly"], options=opts)
        anonymous = not s["source"]
        name = s["source"] or new_id()
        fresh = anonymous or self.db.get_volume(name) is None
        rec = self.create(name, anonymous=anonymous)
        empty = not os.listdir(rec["Mountpoint"])
        copy = (fresh or empty) and not opts.get("nocopy")
        return PlannedMount("volume", rec["Mountpoint"], s["target"], s["readonly"], name,
                            anonymous, copy)

    def prepare(self, planned: list[PlannedMount], in_image) -> None:
        """Docker's copy-up: image files at a fresh volume's path go into the volume.

        in_image(fn) runs fn(top) with the container's files at directory top, in a
        helper's private mount namespace (a crash leaves nothing mounted)."""
        todo = [m for m in planned if m.type == "volume" and m.copy_up]
        if not todo:
            return

        def copy_all(top: str) -> None:
            for m in todo:
                copy_up(top, m.destination, m.source)
        in_image(copy_all)
        for m in todo:
            m.copy_up = False

    def remove_anonymous(self, planned: list[PlannedMount]) -> None:
        for m in planned:
            if m.type == "volume" and m.anonymous:
                try:
                    self.remove(m.name)
                except (NotFound, Conflict):
                    pass


def copy_up(top: str, destination: str, volume_dir: str) -> None:
    """Copy the directory at destination of the root top into the volume.

    destination comes from the image (VOLUME) or the user (-v): it is resolved
    with top as "/", so a symlink on its way never reaches a host directory, and
    cp reads the directory through its descriptor, not by name again."""
    import subprocess
    from kade.util import inroot
    try:
        fd = inroot.open_in_root(top, destination, os.O_PATH | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        return  # nothing there to copy; the runtime makes the mount point
    except OSError as e:
        raise InvalidArgument(f'copying image content into volume at "{destination}" '
                              f"failed: {os.strerror(e.errno or 0).lower()}") from None
    try:
        subprocess.run(["cp", "-a", f"{inroot.fd_path(fd)}/.", f"{volume_dir}/"],
                       pass_fds=(fd,), check=True, capture_output=True)
    except subprocess.CalledProcessError as e:
        raise InvalidArgument(f'copying image content into volume at "{destination}" failed: '
                              f"{e.stderr.decode(errors='replace').strip()}") from None
    finally:
        os.close(fd)
