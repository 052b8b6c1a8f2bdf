"""The repositories a registry holds, and the spec's `n`/`last` pagination."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kade.registry import errcode, paths
from kade.registry.driver import PathNotFound
from kade.registry.errcode import RegistryError

if TYPE_CHECKING:
    from kade.registry.driver import StorageDriver

# a page never holds more than this many names, whatever `n` asks for
MAX_PAGE = 10000


def repositories(driver: "StorageDriver",
                 markers: tuple[str, ...] = ("_manifests", "_layers")) -> list[str]:
    """Every repository name, sorted: directories holding one of `markers`."""
    found: list[str] = []
    _walk(driver, paths.REPOSITORIES, "", markers, found)
    return sorted(found)


def _walk(driver: "StorageDriver", path: str, name: str, markers: tuple[str, ...],
          found: list[str]) -> None:
    try:
        children = driver.list(path)
    except PathNotFound:
        return
    if name and any(m in children for m in markers):
        found.append(name)
    for child in children:
        if not child.startswith("_"):
            _walk(driver, f"{path}/{child}", f"{name}/{child}" if name else child, markers,
                  found)


def parse_n(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise RegistryError(errcode.UNSUPPORTED, {"n": raw}, status=400,
                            message=f'invalid page size n="{raw}"')
    return int(raw)


def page(items: list[str], n: int | None, last: str | None) -> tuple[list[str], bool]:
    """The slice after `last` (exclusive), at most `n` long; and whether more follow.

    `items` must be sorted; `last` need not be one of them.
    """
    if last:
        import bisect
        items = items[bisect.bisect_right(items, last):]
    limit = MAX_PAGE if n is None else min(n, MAX_PAGE)
    return items[:limit], len(items) > limit and n != 0
