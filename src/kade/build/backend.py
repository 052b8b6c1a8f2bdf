"""The seam between the builder and the engine: the value types that cross it,
and (for type checkers) the protocols the engine and the step log satisfy.

    Builder --RunRequest/CopyRequest--> Backend (kade.engine.build.EngineBackend)
    Builder --start/log/done/...-----> Progress (kade.cli.build.Plain / Live)
"""

from __future__ import annotations

from kade.errors import KadeError
from kade.util.record import field
from kade.util.record import record as dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Protocol


class StepFailed(KadeError):
    """A RUN whose process failed: the message is BuildKit's, the code the process's;
    `command` is the step's argv joined by spaces, as docker's legacy builder names it
    in its final "The command '...' returned a non-zero code: N"."""

    def __init__(self, message: str, code: int, command: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.command = command


@dataclass
class RunRequest:
    argv: list[str]
    env: list[str]
    user: str
    workdir: str
    network: str = "default"
    mounts: list[dict] = field(default_factory=list)  # parse_mount dicts, resolved


@dataclass
class CopyRequest:
    """Extract `tar` (a file, owners kept) and then ADD's `archives` (compressed or
    not) into directory `dest`, creating missing directories owned by dir_owner.
    With `rename` (name in the tar, new name) and no existing directory at dest,
    dest is the single file's new path."""
    tar: str | None
    archives: list[str]
    dest: str
    rename: tuple[str, str] | None
    dir_owner: tuple[int, int] = (0, 0)


if TYPE_CHECKING:
    class Backend(Protocol):
        """What the builder needs from the engine. Every step's result is an
        image id; parent None is FROM scratch."""

        def base(self, ref: str, *, pull: bool, local: bool = False) -> tuple[str, dict]: ...
        def reuse_layer(self, parent: str | None, config: dict, source: str,
                        layer: int | None) -> str: ...
        def config(self, image_id: str) -> dict: ...
        def cached(self, key: str) -> str | None: ...
        def remember(self, key: str, image_id: str) -> None: ...
        def commit(self, parent: str | None, config: dict) -> str: ...
        def run(self, parent: str | None, config: dict, req: RunRequest,
                output: Callable[[bytes], None]) -> str: ...
        def copy(self, parent: str | None, config: dict, req: CopyRequest) -> str: ...
        def user_ids(self, image_id: str | None, spec: str) -> tuple[int, int]: ...
        def mkdir(self, parent: str | None, config: dict, path: str) -> str: ...
        def export(self, image_id: str, paths: list[str], into: str) -> None: ...
        def download(self, url: str, into: str) -> tuple[str, float | None]: ...
        def scratch_dir(self) -> str: ...
        def cancel(self) -> None: ...
        def before_threads(self) -> None: ...

    class Progress(Protocol):
        """The step log: a vertex per step, its output, how it ended."""

        def start(self, name: str) -> int: ...
        def log(self, vertex: int, data: bytes) -> None: ...
        def cached(self, vertex: int) -> None: ...
        def done(self, vertex: int) -> None: ...
        def error(self, vertex: int, message: str) -> None: ...
        def warn(self, message: str) -> None: ...
