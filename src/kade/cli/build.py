"""`kade build [OPTIONS] PATH | -` and `kade builder prune`, with BuildKit's step log.

    #2 [2/3] RUN echo hi
    #2 0.153 hi
    #2 DONE 0.2s

--progress=plain prints that; tty (the default on a terminal) shows the steps
live, redrawn in place, and prints each finished step once; -q prints only the
image id (and a failed step's output).
"""

from __future__ import annotations

import os
import sys
import _thread
import time

from kade.cli.errmap import ArgParser, Failed

USAGE = "kade build [OPTIONS] PATH | -"


def parser(verb: str) -> ArgParser:
    p = ArgParser(verb, USAGE)
    p.add_argument("-t", "--tag", action="append", default=[],
                   help="Name and optionally a tag in the 'name:tag' format")
    p.add_argument("-f", "--file", help="Name of the Dockerfile (Default is 'PATH/Dockerfile')")
    p.add_argument("--build-arg", action="append", default=[], help="Set build-time variables")
    p.add_argument("--target", help="Set the target build stage to build.")
    p.add_argument("--no-cache", action="store_true",
                   help="Do not use cache when building the image")
    p.add_argument("--pull", action="store_true",
                   help="Always attempt to pull a newer version of the image")
    p.add_argument("--cache-from", metavar="strings", action="append", default=[],
                   help="Images to consider as cache sources")
    p.add_argument("--label", action="append", default=[], help="Set metadata for an image")
    p.add_argument("--network", default="default",
                   help="Set the networking mode for the RUN instructions during build")
    p.add_argument("--secret", action="append", default=[],
                   help="Secret file to expose to the build (only if BuildKit enabled): "
                        "id=mysecret,src=/local/secret")
    p.add_argument("--platform", help="Set platform if server is multi-platform capable")
    p.add_argument("--timestamp", metavar="int",
                   help="Reproducible build: created times are this Unix time and no file "
                        "in a new layer is newer (default: $SOURCE_DATE_EPOCH)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="Suppress the build output and print image ID on success")
    p.add_argument("--iidfile", help="Write the image ID to the file")
    p.add_argument("--progress", default="auto",
                   help="Set type of progress output (auto, plain, tty). Use plain to show "
                        "container output")
    p.add_argument("--rm", action="store_true", default=True,
                   help="Remove intermediate containers after a successful build")
    p.add_argument("--force-rm", action="store_true",
                   help="Always remove intermediate containers")
    p.add_argument("path")
    return p


def main(ctx, verb: str, args: list[str]) -> int:
    if verb == "builder prune":
        return prune(ctx, verb, args)
    ns = parser(verb).parse_args(args)
    from kade.engine import build as engine_build
    if ns.progress not in ("auto", "plain", "tty", "quiet", "rawjson"):
        raise Failed(f'invalid progress mode "{ns.progress}": use auto, plain or tty')
    req = engine_build.BuildRequest(
        ns.path, ns.file, tags=ns.tag, stdin=sys.stdin.buffer,
        build_args=_build_args(ns.build_arg), target=ns.target, no_cache=ns.no_cache,
        pull=ns.pull, cache_from=ns.cache_from, labels=_pairs(ns.label, "--label"),
        network=ns.network, secrets=_secrets(ns.secret), platform=ns.platform,
        source_date_epoch=_epoch(ns.timestamp))
    if ns.network not in ("default", "none", "host", "bridge"):
        raise Failed(f'network mode "{ns.network}" not supported by kade build: use '
                     "default, none or host")
    out = _progress(ns)
    try:
        image_id = engine_build.build(ctx.engine, req, out)
    except BaseException as e:
        out.close()
        from kade.build.backend import StepFailed
        from kade.errors import KadeError
        if isinstance(e, StepFailed):
            return _step_failed(e)
        if isinstance(e, KadeError):
            raise Failed(f"ERROR: failed to solve: {e}") from None
        raise
    out.finish(image_id, req.tags)
    if ns.iidfile:
        with open(ns.iidfile, "w") as f:
            f.write(image_id)
    if ns.quiet:
        print(image_id)
    return 0


def _step_failed(e) -> int:
    """A failed RUN ends the build as under docker 20.10's builder: its message, and
    the step's own exit code as the build's (1 if it had none)."""
    sys.stderr.write(f"The command '{e.command}' returned a non-zero code: {e.code}\n")
    return e.code or 1


def _epoch(flag: str | None) -> int | None:
    """--timestamp, else SOURCE_DATE_EPOCH (reproducible-builds.org's variable, which
    buildx reads too; empty means unset)."""
    value, name = (flag, "--timestamp") if flag is not None else \
        (os.environ.get("SOURCE_DATE_EPOCH") or None, "SOURCE_DATE_EPOCH")
    if value is None:
        return None
    if not value.isascii() or not value.isdigit():
        from kade.util.escape import escape
        raise Failed(f'invalid {name} "{escape(value)}": it must be a whole number of '
                     "seconds since 1970-01-01 UTC")
    return int(value)


def _build_args(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        k, eq, v = item.partition("=")
        if not eq:  # docker: --build-arg NAME takes NAME's value from the environment
            if k not in os.environ:
                continue
            v = os.environ[k]
        out[k] = v
    return out


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        k, _, v = item.partition("=")
        if not k:
            raise Failed(f'invalid argument "{item}" for "{flag}" flag')
        out[k] = v
    return out


def _secrets(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        fields = dict(f.partition("=")[::2] for f in item.split(","))
        sid, src = fields.get("id"), fields.get("src") or fields.get("source")
        if not sid or not src:
            raise Failed(f'invalid secret "{item}": use id=NAME,src=FILE')
        if not os.path.isfile(src):
            raise Failed(f'secret "{sid}": file "{src}" not found')
        out[sid] = os.path.abspath(src)
    return out


def _progress(ns):
    if ns.quiet or ns.progress == "quiet":
        return Plain(sys.stderr, quiet=True)
    if ns.progress == "tty" or (ns.progress == "auto" and sys.stderr.isatty()):
        return Live(sys.stderr)
    return Plain(sys.stderr)


class Plain:
    """BuildKit's plain log: "#N name", "#N 0.123 output", "#N DONE 0.2s"."""

    def __init__(self, out, *, quiet: bool = False) -> None:
        self.out = out
        self.quiet = quiet
        self.lock = _thread.allocate_lock()
        self.n = 0
        self.t0: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self.logs: dict[int, list[bytes]] = {}
        self.begun = time.monotonic()

    def _write(self, text: str) -> None:
        if not self.quiet:
            self.out.write(text)
            self.out.flush()

    def start(self, name: str) -> int:
        with self.lock:
            self.n += 1
            v = self.n
            self.t0[v] = time.monotonic()
            self.names[v] = name
            self._write(f"#{v} {name}\n")
        return v

    def log(self, v: int, data: bytes) -> None:
        with self.lock:
            self.logs.setdefault(v, []).append(data)
            t = time.monotonic() - self.t0.get(v, self.begun)
            text = data.decode(errors="replace")
            lines = text.splitlines() or [""]
            self._write("".join(f"#{v} {t:.3f} {line}\n" for line in lines))

    def cached(self, v: int) -> None:
        with self.lock:
            self._write(f"#{v} CACHED\n\n")

    def done(self, v: int) -> None:
        with self.lock:
            self._write(f"#{v} DONE {time.monotonic() - self.t0[v]:.1f}s\n\n")

    def error(self, v: int, message: str) -> None:
        with self.lock:
            if self.quiet and self.logs.get(v):  # -q hides output until a step fails
                self.out.write(b"".join(self.logs[v]).decode(errors="replace"))
            self.out.write(f"#{v} ERROR: {message}\n")
            self.out.flush()

    def warn(self, message: str) -> None:
        with self.lock:
            self.out.write(f"[Warning] {message}\n")
            self.out.flush()

    def finish(self, image_id: str, tags: list[str]) -> None:
        from kade.oci import reference
        v = self.start("exporting to image")
        self._write(f"#{v} writing image {image_id} done\n")
        for tag in tags:
            self._write(f"#{v} naming to {reference.parse(tag)} done\n")
        self.done(v)

    def close(self) -> None:
        pass


class Live(Plain):
    """A live view for terminals: the running steps redrawn in place with their
    time and last output lines; finished steps printed once, as BuildKit's tty
    display does."""

    TAIL = 6

    def __init__(self, out) -> None:
        import threading
        super().__init__(out)
        self.running: dict[int, list[str]] = {}
        self.finished = 0
        self.drawn = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self._thread.start()

    def _tick(self) -> None:
        while not self._stop.wait(0.1):
            with self.lock:
                self._redraw()

    def _redraw(self) -> None:
        lines = [f"[+] Building {time.monotonic() - self.begun:.1f}s "
                 f"({self.finished}/{self.n})"]
        for v, tail in self.running.items():
            lines.append(f" => {self.names[v]:<60.60} {time.monotonic() - self.t0[v]:.1f}s")
            lines += [f" => => # {t[:74]}" for t in tail[-self.TAIL:]]
        text = "\x1b[1A\x1b[2K" * self.drawn + "\r\x1b[2K" + "\n\x1b[2K".join(lines) + "\n"
        self.out.write(text)
        self.out.flush()
        self.drawn = len(lines)

    def _settle(self, v: int, mark: str) -> None:
        self.running.pop(v, None)
        self.finished += 1
        self.out.write("\x1b[1A\x1b[2K" * self.drawn)
        self.drawn = 0
        self.out.write(f" => {mark}{self.names[v]}  {time.monotonic() - self.t0[v]:.1f}s\n")
        self._redraw()

    def start(self, name: str) -> int:
        with self.lock:
            self.n += 1
            v = self.n
            self.t0[v], self.names[v] = time.monotonic(), name
            self.running[v] = []
            self._redraw()
        return v

    def log(self, v: int, data: bytes) -> None:
        with self.lock:
            self.logs.setdefault(v, []).append(data)
            self.running.setdefault(v, []).extend(
                data.decode(errors="replace").splitlines())

    def cached(self, v: int) -> None:
        with self.lock:
            self._settle(v, "CACHED ")

    def done(self, v: int) -> None:
        with self.lock:
            self._settle(v, "")

    def error(self, v: int, message: str) -> None:
        with self.lock:
            self._settle(v, "ERROR ")
            output = b"".join(self.logs.get(v, [])).decode(errors="replace")
            if output:  # BuildKit's box; the CLI prints the error itself, once
                self.out.write(f"------\n > {self.names[v]}:\n" + output +
                               ("" if output.endswith("\n") else "\n") + "------\n")
            self.out.flush()

    def finish(self, image_id: str, tags: list[str]) -> None:
        v = self.start("exporting to image")
        self.done(v)
        self.close()
        self.out.write(f" => => writing image {image_id}\n")
        from kade.oci import reference
        for tag in tags:
            self.out.write(f" => => naming to {reference.parse(tag)}\n")
        self.out.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


# --- kade builder prune -----------------------------------------------------------
def prune(ctx, verb: str, args: list[str]) -> int:
    p = ArgParser(verb, "kade builder prune [OPTIONS]")
    p.add_argument("-a", "--all", action="store_true",
                   help="Remove all unused build cache, not just dangling ones")
    p.add_argument("--filter", metavar="filter", action="append", default=[],
                   help="Provide filter values (e.g. 'until=24h')")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    ns = p.parse_args(args)
    until = None
    for f in ns.filter:
        key, _, value = f.partition("=")
        if key != "until":
            raise Failed(f'invalid filter "{key}": kade builder prune takes until=')
        from kade.util.units import parse_timestamp
        until = parse_timestamp(value)
    if not ns.force and sys.stdin.isatty():
        sys.stdout.write("WARNING! This will remove all dangling build cache. "
                         "Are you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    from kade.engine import prune as prune_mod
    from kade.util.units import human_size
    removed, space = prune_mod.build_cache(ctx.engine, all_=ns.all, until=until)
    if removed:
        print("Deleted build cache objects:")
        for item in removed:
            print(item[7:32] if item.startswith("sha256:") else item)
        print()
    print(f"Total reclaimed space: {human_size(space)}")
    return 0
