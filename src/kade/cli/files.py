"""cp, diff, export and commit: a container's files, with docker's output and errors.

Errors of the engine print as docker prints a daemon's ("Error response from
daemon: ..."), errors about host paths plainly, and these verbs exit 1 on
either, as docker's do. The engine (kade.engine.files) does the work.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys

from kade.cli.errmap import ArgParser
from kade.cli.errmap import Failed as _Failed
from kade.errors import KadeError


def main(ctx, verb: str, args: list[str]) -> int:
    return {"cp": _cp, "diff": _diff, "export": _export, "commit": _commit}[verb](ctx, args)


# --- diff -----------------------------------------------------------------------
def _diff(ctx, args: list[str]) -> int:
    p = ArgParser("diff", "kade diff CONTAINER")
    p.add_argument("container")
    ns = p.parse_args(args)
    from kade.engine import files
    engine = ctx.engine
    for kind, path in files.changes(engine, engine.containers.resolve(ns.container)):
        sys.stdout.write(f"{kind} {path}\n")
    return 0


# --- export ---------------------------------------------------------------------
def _export(ctx, args: list[str]) -> int:
    p = ArgParser("export", "kade export [OPTIONS] CONTAINER")
    p.add_argument("-o", "--output", help="Write to a file, instead of STDOUT")
    p.add_argument("container")
    ns = p.parse_args(args)
    if not ns.output and sys.stdout.isatty():
        raise _Failed("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    from kade.engine import files
    engine = ctx.engine
    cid = engine.containers.resolve(ns.container)
    with files.export(engine, cid) as stream:
        _save(stream, ns.output)
    return 0


def _save(stream, output: str | None) -> None:
    """To stdout, or to a file that appears whole (written beside it, then renamed)."""
    if not output:
        sys.stdout.flush()
        shutil.copyfileobj(stream, sys.stdout.buffer, 1 << 20)
        sys.stdout.buffer.flush()
        return
    tmp = f"{output}.kade-tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as out:
            shutil.copyfileobj(stream, out, 1 << 20)
        os.rename(tmp, output)
    except OSError as e:
        raise _Failed(f"failed to export container: {e.strerror or e}: {output}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# --- commit ---------------------------------------------------------------------
def _commit(ctx, args: list[str]) -> int:
    p = ArgParser("commit", "kade commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]")
    p.add_argument("-a", "--author", default="",
        help="Author (e.g., \"John Hannibal Smith <hannibal@a-team.com>\")")
    p.add_argument("-c", "--change", action="append", default=[],
        help="Apply Dockerfile instruction to the created image")
    p.add_argument("-m", "--message", default="", help="Commit message")
    p.add_argument("-p", "--pause", action="store_true", default=True,
                   help="Pause container during commit")
    p.add_argument("--no-pause", action="store_true", hidden=True)
    p.add_argument("container")
    p.add_argument("reference", nargs="?")
    ns = p.parse_args(args)
    from kade.engine import files
    engine = ctx.engine
    cid = engine.containers.resolve(ns.container)
    opts = files.CommitOptions(reference=ns.reference, changes=tuple(ns.change),
                               message=ns.message, author=ns.author,
                               pause=ns.pause and not ns.no_pause)
    print(files.commit(engine, cid, opts))
    return 0


# --- cp -------------------------------------------------------------------------
def _cp(ctx, args: list[str]) -> int:
    p = ArgParser("cp", "kade cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n"
                        "\tkade cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH")
    p.add_argument("-a", "--archive", action="store_true",
        help="Archive mode (copy all uid/gid information)")
    p.add_argument("-L", "--follow-link", action="store_true",
        help="Always follow symbol link in SRC_PATH")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="Suppress progress output during copy. Progress output is automatically "
                   "suppressed if no terminal is attached")
    p.add_argument("src")
    p.add_argument("dst")
    ns = p.parse_args(args)
    src_ctr, src = split_cp_arg(ns.src)
    dst_ctr, dst = split_cp_arg(ns.dst)
    if src_ctr and dst_ctr:
        raise _Failed("copying between containers is not supported")
    if not src_ctr and not dst_ctr:
        raise _Failed("must specify at least one container source")
    if not src and not dst_ctr or not dst and not src_ctr:
        raise _Failed("filesystem path cannot be empty")
    quiet = ns.quiet or not sys.stderr.isatty()
    if src_ctr:
        copied = _from_container(ctx.engine, src_ctr, src, dst, ns.follow_link)
        where = dst
    else:
        copied = _to_container(ctx.engine, dst_ctr, dst, src, ns.follow_link, ns.archive)
        where = f"{dst_ctr}:{dst}"
    if not quiet and dst != "-":
        from kade.util.units import human_size
        sys.stderr.write(f"Successfully copied {human_size(copied)} to {where}\n")
    return 0


def split_cp_arg(arg: str) -> tuple[str, str]:
    """Docker's rule: an absolute path, a path starting with ".", or one without
    ":" is local; anything else is CONTAINER:PATH."""
    if arg.startswith("/"):
        return "", arg
    ctr, sep, path = arg.partition(":")
    if not sep or ctr.startswith("."):
        return "", arg
    return ctr, path


class _Counting:
    """A reader that counts what passes through it."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n)
        self.count += len(data)
        return data

    def readinto(self, b) -> int:
        n = self.inner.readinto(b)
        self.count += n or 0
        return n


def _from_container(engine, ref: str, src: str, dst: str, follow: bool) -> int:
    from kade.engine import files
    cid = engine.containers.resolve(ref)
    if dst == "-":
        with files.open_archive(engine, cid, src, follow=follow, ref=ref) as (_, stream):
            sys.stdout.flush()
            shutil.copyfileobj(stream, sys.stdout.buffer, 1 << 20)
            sys.stdout.buffer.flush()
        return 0
    exists, is_dir = _host_dest(dst)
    with files.open_archive(engine, cid, src, follow=follow, ref=ref) as (info, stream):
        plan = _plan(files, src, info.is_dir, dst, exists, is_dir)
        counted = _Counting(stream)
        tar = files.rebased(counted, *plan.rebase) if plan.rebase else counted  # type: ignore[arg-type]
        _extract_on_host(tar, plan.dest_dir)
    return counted.count


def _host_dest(dst: str) -> tuple[bool, bool]:
    """Whether dst exists and is a directory (through a symlink, as docker does);
    docker's errors when dst cannot be a destination at all."""
    try:
        st = os.stat(dst)
    except NotADirectoryError:
        raise _Failed(f"stat {dst}: not a directory") from None
    except FileNotFoundError:
        parent = os.path.dirname(dst.rstrip("/")) or "."
        if not os.path.isdir(parent):
            raise _Failed(f'invalid output path: directory "{parent}" does not exist') from None
        return False, False
    return True, stat.S_ISDIR(st.st_mode)


def _plan(files, src: str, src_is_dir: bool, dst: str, exists: bool, is_dir: bool):
    try:
        return files.plan_copy(src, src_is_dir, dst, exists, is_dir)
    except KadeError as e:  # docker decides these in its client: no daemon prefix
        raise _Failed(str(e)) from None


def _extract_on_host(tar, dest_dir: str) -> None:
    from kade.archive import extract_into
    try:
        extract_into(tar, "/", os.path.abspath(dest_dir))
    except KadeError as e:
        raise _Failed(str(e)) from None


def _to_container(engine, ref: str, dst: str, src: str, follow: bool, owners: bool) -> int:
    from kade.engine import files
    cid = engine.containers.resolve(ref)
    if src == "-":
        if not files.stat_path(engine, cid, dst, follow=True, ref=ref).is_dir:
            raise _Failed(f'destination "{ref}:{dst}" must be a directory')
        counted = _Counting(sys.stdin.buffer)
        files.put_archive(engine, cid, dst, lambda out: shutil.copyfileobj(counted, out),
                          owners=owners, absolute="relative", ref=ref)
        return counted.count
    contents = files.base_name(src) == "."
    follow = follow or src.endswith("/") or contents
    src_path = os.path.abspath(src)
    try:
        st = os.stat(src_path) if follow else os.lstat(src_path)
    except OSError as e:
        raise _Failed(f"lstat {src_path}: {(e.strerror or str(e)).lower()}") from None
    src_is_dir = stat.S_ISDIR(st.st_mode)
    try:
        there = files.stat_path(engine, cid, dst, follow=True, ref=ref)
        exists, is_dir = True, there.is_dir
    except KadeError:
        exists = is_dir = False
    if contents and src_is_dir:
        src_path = src_path.rstrip("/") + "/."
    plan = _plan(files, src_path, src_is_dir, dst, exists, is_dir)
    return _send_tree(engine, cid, ref, plan, src_is_dir, follow, owners)


class _CountingWriter:
    def __init__(self, out) -> None:
        self.out = out
        self.count = 0

    def write(self, data) -> int:
        self.count += len(data)
        return self.out.write(data)


def _send_tree(engine, cid: str, ref: str, plan, src_is_dir: bool, follow: bool,
               owners: bool) -> int:
    from kade.archive import write_tree
    from kade.engine import files
    counted: list[_CountingWriter] = []

    def produce(out) -> None:
        counted.append(_CountingWriter(out))
        write_tree(counted[0], "/", [plan.source], follow=follow)  # type: ignore[arg-type]
    files.put_archive(engine, cid, plan.dest_dir, produce, owners=owners, rebase=plan.rebase,
                      arrives=(plan.arrives, src_is_dir), ref=ref)
    return counted[0].count if counted else 0
