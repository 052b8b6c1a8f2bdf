"""What the CLI's listing verbs consume from the engine: one narrow protocol per verb
module, as moby's routers declare theirs (`daemon/server/router/*/backend.go`).
kade.engine.Engine satisfies them (the check at the bottom is mypy's); a front door
that can be handed anything with these methods never decides policy itself.

Types only: the verbs import this module under TYPE_CHECKING, so `kade ps` and
`kade images` load neither it nor typing (tests/unit/cli/test_cli_lean_start.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from kade.engine.diskusage import DiskUsage
    from kade.engine.listing import ContainerSummary, ImageSummary, VolumeSummary


class PsBackend(Protocol):
    """`kade ps`."""

    def list_containers(self, all: bool = False, filters: dict | None = None,
                        last: int = -1, latest: bool = False,
                        size: bool = False) -> list[ContainerSummary]: ...


class ImagesBackend(Protocol):
    """`kade images`."""

    def list_images(self, all: bool = False,
                    filters: dict | None = None) -> list[ImageSummary]: ...


class VolumeBackend(Protocol):
    """`kade volume ls`."""

    def list_volumes(self, filters: dict | None = None) -> list[VolumeSummary]: ...


class NetworkBackend(Protocol):
    """`kade network ls`: network records in inspect's form."""

    def list_networks(self, filters: dict | None = None) -> list[dict]: ...


class SystemBackend(Protocol):
    """`kade system df`."""

    def disk_usage(self) -> DiskUsage: ...


class Backend(PsBackend, ImagesBackend, VolumeBackend, NetworkBackend, SystemBackend,
              Protocol):
    """Everything above: what an engine must offer the CLI's listings."""


if TYPE_CHECKING:
    from kade.engine.core import Engine

    def _engine_is_a_backend(engine: Engine) -> Backend:
        return engine  # mypy fails here when the engine drifts from the protocols
