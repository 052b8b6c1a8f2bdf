"""`kade registry serve|gc`: run Kade's registry server, or collect its garbage."""

from __future__ import annotations

from typing import Any

from kade.cli.errmap import ArgParser

SERVE_USAGE = "kade registry serve [OPTIONS]"
GC_USAGE = "kade registry gc --root DIR [--dry-run] [--uploads-older-than DURATION]"


def main(ctx, verb: str, args: list[str]) -> int:
    # args[0] is a subcommand: cli.main answers for any other word
    sub, rest = args[0], args[1:]
    if sub == "serve":
        return _serve(ctx, rest)
    return _gc(ctx, rest)


def _size(text: str) -> int:
    from kade.util.units import ram_in_bytes
    return ram_in_bytes(text) if text not in ("", "0") else 0


def _serve(ctx, args: list[str]) -> int:
    p = ArgParser("registry serve", SERVE_USAGE)
    p.add_argument("--addr", default="127.0.0.1:5000",
                   help="Address to listen on, HOST:PORT")
    p.add_argument("--root", help="Storage directory (default <kade root>/registry)")
    p.add_argument("--htpasswd", help="Require Basic auth from this htpasswd file (bcrypt)")
    p.add_argument("--tls-cert", help="Serve HTTPS with this certificate (PEM)")
    p.add_argument("--tls-key", help="Private key of --tls-cert (PEM)")
    p.add_argument("--token-realm",
                   help="Require bearer tokens from this realm URL (a path: this server)")
    p.add_argument("--token-key",
                   help="Token key: RSA/EC PEM (RS256/ES256) or a shared secret (HS256)")
    p.add_argument("--token-service", default="kade-registry",
                   help="Token audience")
    p.add_argument("--token-issuer", default="kade-registry",
                   help="Token issuer")
    p.add_argument("--max-blob-size", default="", metavar="bytes",
                   help="Refuse blobs larger than this (e.g. 10g; default no limit)")
    p.add_argument("--access-log", action="store_true", help="Log every request to stderr")
    p.add_argument("--head-timeout", default="20s",
                   help="Close connections that take longer to send a request head")
    ns: Any = p.parse_args(args)
    from kade.registry.serve import Config, serve
    head_timeout = _duration("--head-timeout", ns.head_timeout, positive=True)
    root = ns.root or _default_root(ctx)
    config = Config(root=root, addr=ns.addr, htpasswd=ns.htpasswd, tls_cert=ns.tls_cert,
                    tls_key=ns.tls_key, token_realm=ns.token_realm, token_key=ns.token_key,
                    token_service=ns.token_service, token_issuer=ns.token_issuer,
                    max_blob_size=_size(ns.max_blob_size), access_log=ns.access_log,
                    head_timeout=head_timeout)
    return serve(config)


def _gc(ctx, args: list[str]) -> int:
    p = ArgParser("registry gc", GC_USAGE)
    p.add_argument("--root", help="Storage directory of the registry")
    p.add_argument("--dry-run", action="store_true", help="Only list what would be removed")
    p.add_argument("-q", "--quiet", action="store_true", help="Print only the summary")
    p.add_argument("--uploads-older-than", default="168h", metavar="duration",
                   help="Remove uploads not written to for this long")
    ns: Any = p.parse_args(args)
    from kade.registry.driver.filesystem import FilesystemDriver
    from kade.registry.gc import collect
    from kade.util.units import human_size
    max_age = _duration("--uploads-older-than", ns.uploads_older_than)
    root = ns.root or _default_root(ctx)
    log = None if ns.quiet else (lambda line: print(line))
    result = collect(FilesystemDriver(root), dry_run=ns.dry_run, upload_max_age=max_age,
                     log=log)
    verb = "would free" if ns.dry_run else "freed"
    print(f"{len(result.removed)} blobs unreferenced, {verb} {human_size(result.freed)}; "
          f"{result.marked} referenced; {len(result.uploads)} stale uploads, {verb} "
          f"{human_size(result.uploads_freed)}")
    return 0


def _duration(flag: str, text: str, positive: bool = False) -> float:
    """A Go duration flag; docker's message for a bad one names the flag."""
    from kade.errors import InvalidArgument
    from kade.util.units import parse_duration
    try:
        seconds = parse_duration(text)
    except InvalidArgument as e:
        raise InvalidArgument(f'invalid argument "{text}" for "{flag}" flag: {e}') from None
    if seconds < 0 or (positive and seconds == 0):
        raise InvalidArgument(f'invalid argument "{text}" for "{flag}" flag: must be '
                              f'{"more than 0" if positive else "0 or more"}')
    return seconds


def _default_root(ctx) -> str:
    import os
    base = ctx.root or os.environ.get("KADE_ROOT") or "/var/lib/kade"
    return os.path.join(base, "registry")
