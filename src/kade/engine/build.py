"""The engine's side of `kade build`: kade.build.Builder's Backend.

Every step's result is an image (docker's legacy builder does the same): an
intermediate one, hidden from `kade images` without -a and kept as build cache
until `kade builder prune`; the cache maps a step's key to it (table build_cache).
RUN runs a container from the step's parent image through the root's supervisor
and commits what it changed; COPY and ADD extract a tar into a container's
layers in a helper process (engine/files.py), resolved with the image's root
as "/"; WORKDIR makes its directory the same way. Every container is removed
when its step ends, failed or not; a step's container names its build as its
owner, and the first `ps`/`rm`/`prune` that finds the build dead removes it.

Scratch files (extracted contexts, COPY tars, exported stages) live in
<root>/builder/tmp/<build>/ and go when the build ends.
"""

from __future__ import annotations

import os
import _thread
import stat
import time

from kade.errors import FailedPrecondition, InvalidArgument, KadeError, NotFound

TMP = os.path.join("builder", "tmp")
CACHE_MOUNTS = os.path.join("builder", "cache-mounts")


class EngineBackend:
    def __init__(self, engine, *, quiet_pull: bool = True, epoch: int | None = None) -> None:
        self.engine = engine
        self.quiet_pull = quiet_pull
        self.epoch = epoch  # SOURCE_DATE_EPOCH: layers' file times clamped to it
        self._tmp = os.path.join(engine.root, TMP, f"{os.getpid()}-{os.urandom(4).hex()}")
        self._n = 0
        self._lock = _thread.allocate_lock()
        self._running: set[str] = set()
        self._cancelled = False
        self._touched: list[str] = []

    def close(self) -> None:
        if self._touched:
            self.engine.db.cache_touch(self._touched, time.time())
        if self._n:  # scratch_dir made it
            import shutil
            shutil.rmtree(self._tmp, ignore_errors=True)

    def before_threads(self) -> None:
        """Start the root's supervisor before stages build in parallel: starting it
        closes the database, which must not happen while other threads use it."""
        from kade.engine import monitorclient
        monitorclient.connect(self.engine).close()

    # --- images ---------------------------------------------------------------
    def base(self, ref: str, *, pull: bool, local: bool = False) -> tuple[str, dict]:
        from kade.engine.run import ensure_image
        from kade.oci import reference
        try:
            reference.parse(ref)
        except InvalidArgument:
            raise InvalidArgument(f'invalid reference format: "{ref}" is not a valid '
                                  "image name or build stage") from None
        with self._lock:
            try:
                image_id = ensure_image(self.engine, ref, "never" if local else
                                        "always" if pull else "missing", quiet=self.quiet_pull)
            except KadeError as e:
                if ref in str(e):
                    raise
                # a pull's error names the registry, not the image the build wanted
                raise type(e)(f"failed to resolve source metadata for {ref}: {e}") from None
        return image_id, self.config(image_id)

    def config(self, image_id: str) -> dict:
        return self.engine.images.config(image_id)

    def cached(self, key: str) -> str | None:
        db = self.engine.db
        image_id = db.cache_get(key)
        if image_id is None:
            return None
        rec = db.get_image(image_id)
        if rec is None or not self._layers_present(rec):
            return None
        self._touched.append(key)  # written once, when the build ends
        return image_id

    def _layers_present(self, rec: dict) -> bool:
        """A committed snapshot never outlives its parents: the top one will do."""
        from kade.oci import digest as dg
        diff_ids = [lay["diff_id"] for lay in rec["layers"]]
        return not diff_ids or self.engine.snapshots.exists(dg.chain_ids(diff_ids)[-1])

    def remember(self, key: str, image_id: str) -> None:
        self.engine.db.cache_put(key, image_id, time.time())

    def _layers(self, parent: str | None) -> list:
        from kade.engine.files import image_layers
        return image_layers(self.engine.images.record(parent)) if parent else []

    def commit(self, parent: str | None, config: dict, layer=None) -> str:
        layers = self._layers(parent) + ([layer] if layer is not None else [])
        if layer is None and config.get("history") and parent is not None:
            config["history"][-1]["empty_layer"] = True
        return self.engine.images.create(config, layers, parent=parent or "")

    def reuse_layer(self, parent: str | None, config: dict, source: str,
                    layer: int | None) -> str:
        """--cache-from: the step's image from the parent plus layer number `layer`
        of image `source` (None: no layer)."""
        from kade.engine.files import image_layers
        extra = image_layers(self.engine.images.record(source))[layer] \
            if layer is not None else None
        layers = self._layers(parent) + ([extra] if extra is not None else [])
        return self.engine.images.create(config, layers, parent=parent or "")

    def finish(self, image_id: str, tags: list[str]) -> list[str]:
        images = self.engine.images
        images.mark_final(image_id)
        out = []
        for tag in tags:
            name = images.tag(image_id, tag)
            self.engine.emit("image", "tag", image_id, {"name": tag})
            out.append(name)
        return out

    def user_ids(self, image_id: str | None, spec: str) -> tuple[int, int]:
        """COPY --chown: names from the image's /etc/passwd and /etc/group; a user
        alone is its own group too, as docker's builder reads it."""
        from kade.engine import users
        user, _, group = spec.partition(":")
        passwd = self._read(image_id, "/etc/passwd")
        groups = self._read(image_id, "/etc/group")
        try:
            uid = users.resolve(user, passwd, groups)[0]
            gid = users.resolve(f"0:{group or user}", passwd, groups)[1]
        except InvalidArgument:
            raise InvalidArgument(f"unable to convert uid/gid chown string to host mapping: "
                                  f"can't find uid or gid for user/group in {spec!r}") from None
        return uid, gid

    def _read(self, image_id: str | None, path: str) -> bytes | None:
        from kade.snapshots import read_file
        if image_id is None:
            return None
        top = self.engine.images.top_layer(image_id)
        return read_file(self.engine.snapshots, top, path) if top else None

    # --- steps that change files ------------------------------------------------
    def _container(self, parent: str | None, **kw) -> str:
        from kade.engine.options import CreateOptions
        if parent is None:  # FROM scratch: an image without layers to stand on
            from kade.oci import platform
            parent = self.engine.images.create({**platform.host(), "config": {}}, [],
                                               parent="")
        from kade.engine.procs import me
        # owned by this build: if it dies, the next reader that lists it removes it
        opts = CreateOptions(parent, kw.pop("command", ["true"]), entrypoint=[""],
                             pull="never", owner=me(), **kw)
        cid = self.engine.containers.create(opts)
        with self._lock:
            self._running.add(cid)
        return cid

    def _drop(self, cid: str) -> None:
        try:
            self.engine.containers.remove(cid, force=True)
        except NotFound:
            pass
        with self._lock:
            self._running.discard(cid)

    def _commit_container(self, cid: str, parent: str | None, config: dict) -> str:
        from kade.engine.files import _new_layer
        layer = _new_layer(self.engine, cid, self.epoch)
        return self.commit(parent, config, layer)

    def run(self, parent: str | None, config: dict, req, output) -> str:
        mounts = [self._mount(m) for m in req.mounts if not m.get("skip")]
        cid = self._container(parent, command=req.argv, env=req.env, user=req.user or None,
                              workdir=req.workdir, network=req.network, mounts=mounts)
        try:
            if self._cancelled:  # cancelled while the container was being made
                raise FailedPrecondition("build cancelled")
            code = self._attached(cid, output)
            if self._cancelled:
                raise FailedPrecondition("build cancelled")
            if code != 0:
                from kade.build.backend import StepFailed
                command = " ".join(req.argv)
                raise StepFailed(f'process "{command}" did not complete '
                                 f"successfully: exit code: {code}", code, command)
            self._drop_mount_stubs(cid, [m["target"] for m in mounts])
            return self._commit_container(cid, parent, config)
        finally:
            self._drop(cid)

    def _drop_mount_stubs(self, cid: str, targets: list[str]) -> None:
        """RUN --mount targets are not the image's: remove the empty files and
        directories the runtime made for them (BuildKit's rule), deepest first,
        stopping at anything the parent image has or the step put there."""
        from kade.engine.files import _layer_dirs
        upper, lowers = _layer_dirs(self.engine.snapshots, cid)
        for target in targets:
            path = os.path.normpath("/" + target)
            if not _plain_dirs(upper, os.path.dirname(path)):
                continue  # reached through a symlink: leave it alone
            while path != "/" and not any(_lexists(low, path) for low in lowers):
                try:
                    st = os.lstat(upper + path)
                    if stat.S_ISDIR(st.st_mode):
                        os.rmdir(upper + path)
                    elif stat.S_ISREG(st.st_mode) and st.st_size == 0:
                        os.unlink(upper + path)
                    else:
                        break
                except OSError:  # not there, or a directory the step filled
                    break
                path = os.path.dirname(path)

    def _attached(self, cid: str, output) -> int:
        """Start the container with its output on a pipe; pump it to output."""
        from kade.engine import monitorclient
        # a supervisor forked now would inherit the pipe and hold its write end open
        self.before_threads()
        r, w = os.pipe()
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            sock = monitorclient.request_start(self.engine, cid, {"stdin": False, "tty": False},
                                               fds=(null, w, w))
        finally:
            os.close(w)
            os.close(null)
        try:
            started = monitorclient.answer(sock, {"stdin": False, "tty": False})
            while True:
                chunk = os.read(r, 65536)
                if not chunk:
                    break
                output(chunk)
            return started.wait_exit()
        finally:
            os.close(r)

    def _mount(self, m: dict) -> dict:
        """A RUN --mount as a container mount spec."""
        kind = m["type"]
        if kind == "tmpfs":
            opts = {"size": m["size"]} if m.get("size") else {}
            return {"type": "tmpfs", "target": m["target"], "source": "", "readonly": False,
                    "options": opts}
        if kind == "cache":
            import hashlib
            name = hashlib.sha256(m["id"].encode()).hexdigest()[:32]
            src = os.path.join(self.engine.root, CACHE_MOUNTS, name)
            if not os.path.isdir(src):
                os.makedirs(src, exist_ok=True)
                os.chmod(src, int(m.get("mode", "755"), 8))
                os.chown(src, int(m.get("uid", 0)), int(m.get("gid", 0)))
            return {"type": "bind", "target": m["target"], "source": src,
                    "readonly": m.get("ro") == "true", "options": {}}
        if kind == "secret":
            return {"type": "bind", "target": m["target"], "source": m["source"],
                    "readonly": True, "options": {}}
        # bind: read-only unless rw, and then writes are thrown away (BuildKit's rule)
        src = m["source"]
        if m.get("ro", "true") == "false":
            import shutil
            copy = self.scratch_dir()
            dst = os.path.join(copy, "src")
            if os.path.isdir(src):
                shutil.copytree(src, dst, symlinks=True)
            else:
                shutil.copy2(src, dst)
            src = dst
        return {"type": "bind", "target": m["target"], "source": src,
                "readonly": m.get("ro", "true") != "false", "options": {}}

    def copy(self, parent: str | None, config: dict, req) -> str:
        fast = self._copy_without_container(parent, config, req)
        if fast is not None:
            return fast
        return self._copy_in(parent, config, req.tar, req.archives, req.dest, req.rename,
                             req.dir_owner)

    def _copy_in(self, parent: str | None, config: dict, *args) -> str:
        """files.copy_in(*args) into a container of parent, committed as one step."""
        from kade.engine import files
        cid = self._container(parent)
        try:
            files.copy_in(self.engine, cid, *args)
            return self._commit_container(cid, parent, config)
        finally:
            self._drop(cid)

    def _copy_without_container(self, parent: str | None, config: dict, req) -> str | None:
        """The common COPY (see engine/buildcopy.py): its layer written directly."""
        from kade.engine import buildcopy
        snaps = self.engine.snapshots
        if snaps.driver != "overlay" or req.tar is None or req.archives:
            return None
        top = self.engine.images.top_layer(parent) if parent else None
        layers = [os.path.join(snaps.root, str(i.num), "fs") for i in snaps.chain(top)] \
            if top else []
        p = buildcopy.plan(layers, req.tar, req.dest, req.rename)
        if p is None:
            return None
        path = os.path.join(self.scratch_dir(), "layer.tar")
        with open(path, "w+b") as out:
            buildcopy.write_layer(p, req.tar, out, req.dir_owner, self.epoch)
            out.seek(0)
            layer = self.engine.images.ingest_layer(out)
        return self.commit(parent, config, layer)

    def mkdir(self, parent: str | None, config: dict, path: str) -> str:
        return self._copy_in(parent, config, None, [], path, None, (0, 0))

    def export(self, image_id: str, paths: list[str], into: str) -> None:
        """Paths of an image (COPY --from) into a host directory, owners kept."""
        from kade.archive import extract_into
        from kade.engine import files
        cid = self._container(image_id)
        try:
            root = files.container_root(self.engine, cid, mode="export")
            for path in paths:
                try:
                    # a symlink named as a source is copied as what it points to
                    with files.archive_in_root(root, path, follow=True,
                                               label=path) as (_, stream):
                        dest = os.path.join(into, os.path.dirname(path.strip("/")))
                        os.makedirs(dest, exist_ok=True)
                        extract_into(stream, into, os.path.dirname(path.rstrip("/")) or "/",
                                     owners=True)
                except NotFound:
                    continue  # the builder names what is missing
        finally:
            self._drop(cid)

    def download(self, url: str, into: str) -> tuple[str, float | None]:
        """ADD URL: the file, named after the URL's last path part, and its
        Last-Modified time."""
        import shutil
        import urllib.parse
        import urllib.request
        from email.utils import parsedate_to_datetime
        name = os.path.basename(urllib.parse.urlsplit(url).path) or "__unnamed__"
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, \
                    open(os.path.join(into, name), "wb") as out:
                shutil.copyfileobj(resp, out)
                modified = resp.headers.get("Last-Modified")
        except OSError as e:
            raise KadeError(f"failed to download {url}: {e}") from None
        mtime = parsedate_to_datetime(modified).timestamp() if modified else None
        return name, mtime

    def scratch_dir(self) -> str:
        with self._lock:
            self._n += 1
            path = os.path.join(self._tmp, str(self._n))
        os.makedirs(path)  # <root>/builder/tmp/<pid>-<random>/<n>
        return path

    def cancel(self) -> None:
        """Ctrl-C: kill the steps' containers; each step then removes its own."""
        from kade.engine import lifecycle
        self._cancelled = True
        with self._lock:
            running = list(self._running)
        for cid in running:
            try:
                lifecycle.kill(self.engine, cid, 9)
            except KadeError:
                pass


def _plain_dirs(top: str, path: str) -> bool:
    """Whether every component of path exists under top as a real directory."""
    cur = top
    for part in path.strip("/").split("/"):
        if not part:
            continue
        cur = os.path.join(cur, part)
        try:
            if not stat.S_ISDIR(os.lstat(cur).st_mode):
                return False
        except OSError:
            return False
    return True


def _lexists(top: str, path: str) -> bool:
    """Whether path is in layer top; a symlink on the way counts as yes."""
    cur = top
    for part in path.strip("/").split("/"):
        cur = os.path.join(cur, part)
        try:
            st = os.lstat(cur)
        except OSError:
            return False
        if stat.S_ISLNK(st.st_mode):
            return True
    return True


# --- one build, from the CLI's (or later the API's) request ----------------------
class BuildRequest:
    """What `kade build` and POST /build ask for. context: a directory, "-" (stdin:
    a tar, or a Dockerfile alone) or None; dockerfile: a path, "-" (stdin) or None
    (Dockerfile in the context)."""

    def __init__(self, context: str | None, dockerfile: str | None = None, *,
                 tags: list[str] | tuple[str, ...] = (), stdin=None, **options) -> None:
        self.context = context
        self.dockerfile = dockerfile
        self.tags = list(tags)
        self.stdin = stdin
        self.options = options  # BuildOptions fields


def build(engine, req: BuildRequest, progress) -> str:
    """Run one build; returns the image id, tagged with req.tags."""
    from kade.build import Builder, BuildOptions
    from kade.oci import reference
    for tag in req.tags:
        parsed = reference.parse(tag)
        if parsed.digest:
            raise InvalidArgument(f'invalid tag "{tag}": a tag cannot hold a digest')
    backend = EngineBackend(engine, epoch=req.options.get("source_date_epoch"))
    builder = None
    try:
        text, name, context = _inputs(backend, req)
        opts = BuildOptions(dockerfile=text, dockerfile_name=name, context=context,
                            **req.options)
        builder = Builder(backend, opts, progress)
        try:
            image_id = builder.build()
        except KeyboardInterrupt:
            builder.cancel()
            raise
        backend.finish(image_id, req.tags)
        return image_id
    finally:
        backend.close()


def _inputs(backend: EngineBackend, req: BuildRequest):
    """(Dockerfile bytes, its name for messages, the Context or None)."""
    stdin = req.stdin
    ctx_dir = None
    if req.context == "-":
        data = stdin.read()
        if _is_tar(data):
            ctx_dir = backend.scratch_dir()
            _extract_context(data, ctx_dir)
        elif req.dockerfile not in (None, "-"):
            raise InvalidArgument("a Dockerfile on stdin cannot be combined with -f")
        else:
            return data, "Dockerfile", None
    elif req.context is not None:
        if "://" in req.context or req.context.startswith("git@"):
            raise InvalidArgument(f'unable to prepare context: "{req.context}": remote '
                                  "contexts (git, URLs) are not supported; clone or download "
                                  "it and build from the directory")
        if not os.path.isdir(req.context):
            if os.path.exists(req.context):  # docker's words for a file given as PATH
                raise InvalidArgument("unable to prepare context: context must be a "
                                      f"directory: {os.path.abspath(req.context)}")
            raise InvalidArgument(f'unable to prepare context: path "{req.context}" not found')
        ctx_dir = req.context
    if req.dockerfile == "-":
        text, name = stdin.read(), "Dockerfile"
        df_path = None
    else:
        df_path = _dockerfile_path(req, ctx_dir)
        name = os.path.basename(df_path)
        try:
            with open(df_path, "rb") as f:
                text = f.read()
        except FileNotFoundError:
            shown = req.dockerfile or os.path.join(req.context or ".", "Dockerfile")
            raise InvalidArgument(f"unable to prepare context: unable to evaluate symlinks "
                                  f'in Dockerfile path: lstat {shown}: no such file or '
                                  "directory") from None
    return text, name, _context(ctx_dir, df_path) if ctx_dir else None


def _dockerfile_path(req: BuildRequest, ctx_dir: str | None) -> str:
    if req.dockerfile is None:
        return os.path.join(ctx_dir or ".", "Dockerfile")
    if req.context == "-":  # -f names a file inside the tar
        return os.path.join(ctx_dir or ".", req.dockerfile)
    return req.dockerfile


def _context(ctx_dir: str, df_path: str | None):
    from kade.build import dockerignore
    from kade.build.context import Context
    ignore_file = dockerignore.ignore_file_for(ctx_dir, df_path and os.path.abspath(df_path))
    matcher = dockerignore.Matcher(dockerignore.read(ignore_file)) if ignore_file else None
    return Context(ctx_dir, matcher)


def _is_tar(data: bytes) -> bool:
    import io
    from kade.build.context import is_archive
    return is_archive(io.BytesIO(data))


def _extract_context(data: bytes, into: str) -> None:
    import io
    from kade.archive import extract_into, open_decompressed
    with open_decompressed(io.BytesIO(data)) as stream:
        extract_into(stream, into, "/", owners=False, absolute="relative")
