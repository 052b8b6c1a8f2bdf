"""`kade registry serve`: a configuration in, a running registry out."""

from __future__ import annotations

import os
import signal
import sys
from typing import NamedTuple
from urllib.parse import urlparse

from kade.errors import InvalidArgument
from kade.registry import auth, jwt
from kade.registry.api import RegistryAPI
from kade.registry.driver.filesystem import FilesystemDriver
from kade.registry.htpasswd import Htpasswd
from kade.registry.httpd import HEAD_TIMEOUT, Server, raise_nofile_limit
from kade.registry.store import open_store


class Config(NamedTuple):
    root: str
    addr: str = "127.0.0.1:5000"
    htpasswd: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    # an absolute URL, or a path meaning "this server" (e.g. /token)
    token_realm: str | None = None
    token_key: str | None = None
    token_service: str = "kade-registry"
    token_issuer: str = "kade-registry"
    max_blob_size: int = 0
    access_log: bool = False
    head_timeout: float = HEAD_TIMEOUT


def parse_addr(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise InvalidArgument(f'invalid listen address "{addr}": want HOST:PORT')
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def _tls_context(config: Config):
    if not config.tls_cert and not config.tls_key:
        return None
    if not (config.tls_cert and config.tls_key):
        raise InvalidArgument("--tls-cert and --tls-key go together")
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(config.tls_cert, config.tls_key)
    return ctx


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise InvalidArgument(f'cannot read {what} "{path}": {e.strerror}') from None


def build(config: Config) -> tuple[Server, RegistryAPI]:
    """The listening server and its handler; nothing is served until serve_forever."""
    store = open_store(FilesystemDriver(config.root), config.max_blob_size)
    htpasswd = Htpasswd(config.htpasswd) if config.htpasswd else None
    if htpasswd is None and config.htpasswd is not None:
        raise InvalidArgument("empty --htpasswd path")
    if config.htpasswd:
        _read(config.htpasswd, "htpasswd file")
    tls = _tls_context(config)
    api = RegistryAPI(store)
    if config.head_timeout <= 0:
        raise InvalidArgument(f"--head-timeout must be more than 0, "
                              f"not {config.head_timeout:g}s")
    server = Server(api, tls=tls, access_log=config.access_log,
                    head_timeout=config.head_timeout)
    server.bind(parse_addr(config.addr))
    if config.token_realm or config.token_key:
        _token_auth(config, api, server, htpasswd)
    elif htpasswd is not None:
        api.authorizer = auth.Basic(htpasswd)
    return server, api


def _token_auth(config: Config, api: RegistryAPI, server: Server, htpasswd) -> None:
    if not (config.token_realm and config.token_key):
        raise InvalidArgument("--token-realm and --token-key go together")
    key = jwt.load_key(_read(config.token_key, "token key"))
    realm = config.token_realm
    if realm.startswith("/"):
        host, port = server.address
        scheme = "https" if server.tls else "http"
        host = f"[{host}]" if ":" in host else host
        realm = f"{scheme}://{host}:{port}{realm}"
    api.authorizer = auth.Token(realm, config.token_service, key, config.token_issuer)
    if key.can_sign:
        api.token_issuer = auth.TokenIssuer(key, config.token_service, config.token_issuer,
                                            htpasswd)
        api.token_path = urlparse(realm).path or "/"


def serve(config: Config, out=None) -> int:
    out = out or sys.stderr
    server, api = build(config)
    raise_nofile_limit()
    host, port = server.address
    scheme = "https" if server.tls else "http"
    mode = type(api.authorizer).__name__.lower()
    out.write(f"kade registry listening on {scheme}://{host}:{port} "
              f"(root {os.path.abspath(config.root)}, auth {mode})\n")
    out.flush()

    def stop(signum, frame):
        server.close()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    return 0
