"""Kade's registry server: the OCI distribution spec over a storage driver.

    kade.registry.serve(kade.registry.Config(root="/srv/registry", addr="127.0.0.1:5000"))

Modules, bottom up: `driver` (paths and bytes), `paths` (the on-disk layout),
`blobs`, `uploads`, `manifests`, `catalog` (registry semantics; `store` puts
them together), `gc`, `auth` with `htpasswd` and `jwt`, `errcode` (the error
table), `httpd` (HTTP/1.1) and `api` (the routes). Names are imported lazily so
that `import kade.registry` costs nothing.
"""

from __future__ import annotations

__all__ = ["Config", "serve", "collect_garbage"]


def __getattr__(name: str):
    if name in ("Config", "serve"):
        from kade.registry import serve as _serve
        return getattr(_serve, name)
    if name == "collect_garbage":
        from kade.registry.gc import collect
        return collect
    raise AttributeError(name)
