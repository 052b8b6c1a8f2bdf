"""The engine: the one facade every front door (CLI, API, compose) calls.

Layout it owns under the Kade root:

    <root>/kade.db                   metadata (see kade.metadata)
    <root>/content/                  blobs (see kade.content)
    <root>/snapshots/<driver>/       layers and container tops (see kade.snapshots)
    <root>/containers/<id>/          bundle: config.json, rootfs/ (mount point),
                                     hosts, hostname, resolv.conf, <id>-json.log, lock
    <root>/runtime/<id>/             the runtime's state (see kade.runtime)
    <root>/runtime/.seccomp/         compiled seccomp filters (see kade.runtime.seccomp)
    <root>/volumes/<name>/_data      named volumes (see kade.volumes)
    <root>/runtime-external/         state of --runtime runtimes (see engine/external.py)
    <root>/monitor.sock|lock|log     the root's supervisor (see engine/monitor.py)
    <root>/registries.json|toml      mirrors, insecure registries, certs_dir (kade.remotes.hosts)
    <root>/distribution/by-diffid/   compressed forms of layers and where registries have
                                     them (kade.remotes.sources)
    <root>/distribution/unpack/      a pull's staged layers (kade.images.pull)
    <root>/tmp/                      scratch for commit's layer file (engine/files.py)

Policy lives here, not in the CLI: `kade run` and an API create are one call.
"""

from kade.engine.core import Engine, default_root

__all__ = ["Engine", "default_root"]
