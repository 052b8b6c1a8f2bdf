"""images, rmi, tag, history, import, save, load, image inspect/prune/bootstrap."""

from __future__ import annotations

import sys
import time

from kade.cli.common import confirm, each
from kade.cli.errmap import ArgParser, UsageError

HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST",
           "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
           "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE",
           "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE"}

TYPE_CHECKING = False  # not `from typing`: `kade images` must not import it
if TYPE_CHECKING:
    from typing import BinaryIO

    from kade.cli.backend import ImagesBackend
    from kade.engine.listing import ImageSummary


class ImageRow(dict):
    """An image as --format sees it; docker's field names."""
    go_struct = "*formatter.ImageContext"  # an unknown field is an error, as there


class HistoryRow(dict):
    """A history entry as --format sees it; docker's field names."""
    go_struct = "*formatter.historyContext"  # an unknown field is an error, as there


def main(ctx, verb: str, args: list[str]) -> int:
    return {"images": _images, "rmi": _rmi, "tag": _tag, "history": _history,
            "import": _import, "save": _save, "load": _load, "image inspect": _inspect,
            "image prune": _prune, "image bootstrap": _bootstrap}[verb](ctx, verb, args)


def _image_rows(images: list[ImageSummary], no_trunc: bool) -> list[ImageRow]:
    """One row per tag (an untagged image: one <none> row), docker's columns."""
    from kade.oci import reference
    from kade.util.units import human_duration, human_size
    now = time.time()
    rows = []
    for img in images:
        created = img.created
        base = {"ID": img.id if no_trunc else img.id[7:19],
                "CreatedSince": human_duration(now - created) + " ago",
                "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(created)),
                "Size": human_size(img.size), "VirtualSize": human_size(img.size),
                "Containers": "N/A", "SharedSize": "N/A", "UniqueSize": "N/A"}
        for name in img.repo_tags or [None]:
            ref = reference.parse_stored(name) if name else None
            rows.append(ImageRow(
                base, Repository=ref.familiar_name() if ref else "<none>",
                Tag=ref.tag if ref else "<none>",
                Digest=img.repo_digests.get(ref.repository, "<none>") if ref else "<none>"))
    return rows


def _images(ctx, verb, args):
    p = ArgParser("images", "kade images [OPTIONS] [REPOSITORY[:TAG]]")
    p.add_argument("-a", "--all", action="store_true",
        help="Show all images (default hides intermediate images)")
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("--digests", action="store_true", help="Show digests")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("-f", "--filter", metavar="filter", action="append", default=[],
        help="Filter output based on conditions provided")
    p.add_argument("--format", help="Pretty-print images using a Go template")
    p.add_argument("repository", nargs="?")
    ns = p.parse_args(args)
    filters: dict = {}
    if ns.filter:  # kade.util.filters costs ~3 ms: only when asked
        from kade.util.filters import parse_filters
        filters = parse_filters(ns.filter)
    if ns.repository:
        filters.setdefault("reference", []).append(ns.repository)
    backend: ImagesBackend = ctx.engine
    rows = _image_rows(backend.list_images(all=ns.all, filters=filters), ns.no_trunc)
    if ns.quiet:
        seen = list(dict.fromkeys(r["ID"] for r in rows))
        print("\n".join(seen), end="\n" if seen else "")
        return 0
    cols = ["{{.Repository}}", "{{.Tag}}"] + (["{{.Digest}}"] if ns.digests else []) + \
        ["{{.ID}}", "{{.CreatedSince}}", "{{.Size}}"]
    fmt = ns.format or "table " + "\t".join(cols)
    from kade.util.table import format_rows
    out = format_rows(fmt, rows, HEADERS)
    print(out, end="" if out.endswith("\n") or not out else "\n")
    return 0


def _rmi(ctx, verb, args):
    p = ArgParser("rmi", "kade rmi [OPTIONS] IMAGE [IMAGE...]")
    p.add_argument("-f", "--force", action="store_true", help="Force removal of the image")
    p.add_argument("--no-prune", action="store_true", help="Do not delete untagged parents")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    ns = p.parse_args(args)
    engine = ctx.engine

    def one(ref):
        return "\n".join(f"{k}: {v}" for k, v in engine.remove_image(ref, ns.force))
    return each(ns.images, one)


def _tag(ctx, verb, args):
    p = ArgParser("tag", "kade tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]")
    p.add_argument("source")
    p.add_argument("target")
    ns = p.parse_args(args)
    images = ctx.engine.images
    images.tag(images.resolve(ns.source), ns.target)
    ctx.engine.emit("image", "tag", images.resolve(ns.source), {"name": ns.target})
    return 0


def _history(ctx, verb, args):
    p = ArgParser("history", "kade history [OPTIONS] IMAGE")
    p.add_argument("-H", "--human", action="store_true", default=True,
        help="Print sizes and dates in human readable format")
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("--format", help="Pretty-print images using a Go template")
    p.add_argument("--layers", action="store_true",
        help="Show the files each layer added (A), changed (C) and removed (D)")
    p.add_argument("image")
    ns = p.parse_args(args)
    if ns.layers and (ns.format or ns.quiet):
        raise UsageError("--layers cannot be combined with --format or --quiet; "
                         "see kade image layers --format json")
    from kade.images.history import history_rows
    rows = history_rows(ctx.engine.images, ns.image, no_trunc=ns.no_trunc,
                        human=ns.human)
    if ns.quiet:
        print("\n".join(r["ID"] for r in rows))
        return 0
    fmt = ns.format or "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
    from kade.util.table import format_rows
    text = format_rows(fmt, [HistoryRow(r) for r in rows], {
        "ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
        "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"})
    if ns.layers:
        from kade.cli.layers import history_changes
        from kade.images.layers import explore
        text = history_changes(explore(ctx.engine.images, ns.image), text.splitlines())
    print(text, end="")
    return 0


def _import(ctx, verb, args):
    p = ArgParser("import", "kade import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]")
    p.add_argument("-c", "--change", action="append", default=[],
        help="Apply Dockerfile instruction to the created image")
    p.add_argument("-m", "--message", default="", help="Set commit message for imported image")
    p.add_argument("--platform", help="Set platform if server is multi-platform capable")
    p.add_argument("source")
    p.add_argument("reference", nargs="?")
    ns = p.parse_args(args)
    from kade.images.importer import import_tarball
    if ns.source.startswith(("http://", "https://")):
        raise UsageError("importing from a URL is not supported yet; download the file first")
    if ns.source == "-":
        image_id = import_tarball(ctx.engine.images, sys.stdin.buffer, ns.reference,
                                  ns.change, ns.message, "-")
    else:
        try:
            f = open(ns.source, "rb")
        except OSError as e:
            from kade.errors import NotFound
            raise NotFound(f"open {ns.source}: {(e.strerror or str(e)).lower()}") from None
        with f:
            image_id = import_tarball(ctx.engine.images, f, ns.reference, ns.change,
                                      ns.message, ns.source)
    ctx.engine.emit("image", "import", image_id)
    print(image_id)
    return 0


def _save(ctx, verb, args):
    p = ArgParser("save", "kade save [OPTIONS] IMAGE [IMAGE...]")
    p.add_argument("-o", "--output", help="Write to a file, instead of STDOUT")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    ns = p.parse_args(args)
    from kade.images import saveload
    if ns.output:
        import os
        tmp = ns.output + ".kade-tmp"
        try:
            with open(tmp, "wb") as f:
                saveload.save(ctx.engine.images, ns.images, f)
            os.replace(tmp, ns.output)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return 0
    if sys.stdout.isatty():
        raise UsageError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    saveload.save(ctx.engine.images, ns.images, sys.stdout.buffer)
    return 0


def _load(ctx, verb, args):
    p = ArgParser("load", "kade load [OPTIONS]")
    p.add_argument("-i", "--input", help="Read from tar archive file, instead of STDIN")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress the load output")
    ns = p.parse_args(args)
    from kade.images import saveload
    f: BinaryIO
    if ns.input:
        try:
            f = open(ns.input, "rb")
        except OSError as e:
            from kade.errors import NotFound
            raise NotFound(f"open {ns.input}: {(e.strerror or str(e)).lower()}") from None
    else:
        if sys.stdin.isatty():
            raise UsageError("requested load from stdin, but stdin is empty")
        f = sys.stdin.buffer
    with f:
        lines = saveload.load(ctx.engine.images, f)
    for line in lines:
        print(line)
    return 0


def _inspect(ctx, verb, args):
    p = ArgParser("image inspect", "kade image inspect [OPTIONS] IMAGE [IMAGE...]")
    p.add_argument("-f", "--format", help="Format the output using the given Go template")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    ns = p.parse_args(args)
    from kade.cli.inspect import emit
    from kade.images.inspect import inspect_image
    return emit([lambda r=r: inspect_image(ctx.engine, r) for r in ns.images], ns.format,
                ns.images, "image")


def _prune(ctx, verb, args):
    p = ArgParser("image prune", "kade image prune [OPTIONS]")
    p.add_argument("-a", "--all", action="store_true",
        help="Remove all unused images, not just dangling ones")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--filter", metavar="filter", action="append", default=[],
        help="Provide filter values (e.g. 'until=<timestamp>')")
    ns = p.parse_args(args)
    from kade.engine import prune
    flt = prune.Filter(ns.filter)  # a bad filter fails before the question
    warning = ("WARNING! This will remove all images without at least one container "
               "associated to them." if ns.all else
               "WARNING! This will remove all dangling images.")
    if not confirm(warning, ns.force):
        return 0
    from kade.util.units import human_size
    out, space = prune.images(ctx.engine, ns.all, flt)
    if out:
        print("Deleted Images:")
        for kind, item in out:
            print(f"{kind}: {item}")
        print()
    print(f"Total reclaimed space: {human_size(space)}")
    return 0


def _bootstrap(ctx, verb, args):
    p = ArgParser("image bootstrap", "kade image bootstrap busybox|debian[:SUITE] [-t TAG]")
    p.add_argument("what")
    p.add_argument("-t", "--tag", help="Name and optionally a tag in the 'name:tag' format")
    p.add_argument("--mirror", help="Debian mirror to bootstrap from")
    ns = p.parse_args(args)
    from kade.images import bootstrap
    what, _, suite = ns.what.partition(":")
    images = ctx.engine.images
    if what == "busybox":
        image_id = bootstrap.bootstrap_busybox(images, ns.tag or "busybox:latest")
    elif what == "debian":
        image_id = bootstrap.bootstrap_debian(images, suite or "bookworm", ns.tag, ns.mirror)
    else:
        raise UsageError(f'unknown bootstrap image "{ns.what}" (busybox or debian[:SUITE])')
    print(image_id)
    return 0

