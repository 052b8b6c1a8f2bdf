"""Kade's state in one SQLite database (`<root>/kade.db`, WAL mode).

Tables (schema version in PRAGMA user_version; migrations in MIGRATIONS):

    images(id, created, record)        id = config digest; record = JSON summary
    tags(name, image_id)               name = normalised reference, e.g.
                                       docker.io/library/busybox:latest
    containers(id, name, created, record, state)   record/state = JSON
    snapshots(key, num, parent, kind, created, size, owner)   kind: active | committed;
                                       owner: "pid:start" of the unpack that committed
                                       the layer, until an image using it is recorded
    volumes(name, created, record)
    events(seq, time, record)
    build_cache(key, image_id, created, last_used)   a build step's cache key ->
                                       the (intermediate) image it made
    networks(id, name, created, record)   record = docker's network JSON + Private
    leases(network_id, address, container_id, owner)   an endpoint's address, taken
                                       by owner ("pid:start" of the supervisor worker
                                       that started the container); stale once the
                                       container is not running and owner is dead

Writers use BEGIN IMMEDIATE so that several `kade` processes serialise on the
database, never on a global file lock, and a crash mid-transaction rolls back.
"""

from kade.metadata.db import DB, open_db

__all__ = ["DB", "open_db"]
