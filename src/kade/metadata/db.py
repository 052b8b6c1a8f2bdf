"""SQLite access; see the package docstring for the schema."""

from __future__ import annotations

import _thread
import os

try:  # the C module itself: the sqlite3 package around it only adds datetime adapters
    import _sqlite3 as sqlite3  # that Kade never uses, and costs ~1 ms to import
except ImportError:  # pragma: no cover
    import sqlite3

from kade.errors import AlreadyExists, NotFound
from kade.util.fastjson import dumps, loads



MIGRATIONS = [
    """
    CREATE TABLE images(id TEXT PRIMARY KEY, created REAL NOT NULL, record TEXT NOT NULL);
    CREATE TABLE tags(name TEXT PRIMARY KEY, image_id TEXT NOT NULL, created REAL NOT NULL);
    CREATE INDEX tags_image ON tags(image_id);
    CREATE TABLE containers(id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL,
        created REAL NOT NULL, image_id TEXT NOT NULL, record TEXT NOT NULL,
        state TEXT NOT NULL);
    CREATE TABLE snapshots(key TEXT PRIMARY KEY, num INTEGER UNIQUE NOT NULL,
        parent TEXT, kind TEXT NOT NULL, created REAL NOT NULL, size INTEGER);
    CREATE TABLE volumes(name TEXT PRIMARY KEY, created REAL NOT NULL, record TEXT NOT NULL);
    CREATE TABLE events(seq INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL,
        record TEXT NOT NULL);
    CREATE TABLE counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    """,
    """
    CREATE TABLE build_cache(key TEXT PRIMARY KEY, image_id TEXT NOT NULL,
        created REAL NOT NULL, last_used REAL NOT NULL);
    CREATE INDEX build_cache_image ON build_cache(image_id);
    """,
    """
    CREATE TABLE networks(id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL,
        created REAL NOT NULL, record TEXT NOT NULL);
    CREATE TABLE leases(network_id TEXT NOT NULL, address TEXT NOT NULL,
        container_id TEXT NOT NULL, owner TEXT NOT NULL,
        PRIMARY KEY(network_id, address));
    CREATE INDEX leases_container ON leases(container_id);
    """,
    # a committed layer's unpacker ("pid:start") until an image that uses it is recorded
    """
    ALTER TABLE snapshots ADD COLUMN owner TEXT;
    """,
]


class _Tx:
    """`with db.tx() as conn:` (a class, not contextlib's decorator, which would
    import collections and functools on every `kade ps`)."""
    __slots__ = ("db", "outer")

    def __init__(self, db: DB):
        self.db = db
        self.outer = False

    def __enter__(self) -> sqlite3.Connection:
        db = self.db
        db._lock.acquire()
        try:
            self.outer = not db.conn.in_transaction
            if self.outer:
                db.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            db._lock.release()
            raise
        return db.conn

    def __exit__(self, kind, value, tb) -> None:
        try:
            if self.outer:
                self.db.conn.execute("ROLLBACK" if kind is not None else "COMMIT")
        finally:
            self.db._lock.release()


class DB:
    def __init__(self, path: str):
        self.path = path
        self.conn = sqlite3.connect(path, timeout=30, isolation_level=None,
                                    check_same_thread=False)
        # one connection may serve many threads (the supervisor's monitors): a
        # transaction holds the lock from BEGIN to COMMIT, a query while it runs
        self._lock = _thread.RLock()
        self.conn.execute("PRAGMA busy_timeout=30000")
        # WAL with synchronous=NORMAL stays consistent across crashes (a power cut may
        # lose the last transactions, never corrupt); FULL would fsync every commit
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self._migrate()

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version == len(MIGRATIONS):
            return
        self.conn.execute("PRAGMA journal_mode=WAL")
        with self.tx():
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            for i, script in enumerate(MIGRATIONS[version:], start=version):
                for stmt in filter(str.strip, script.split(";")):
                    self.conn.execute(stmt)
                self.conn.execute(f"PRAGMA user_version={i + 1}")

    def tx(self) -> _Tx:
        """A write transaction; nested use (same thread) joins the outer one."""
        return _Tx(self)

    def q(self, sql: str, *args) -> list[tuple]:
        with self._lock:
            return self.conn.execute(sql, args).fetchall()

    def q1(self, sql: str, *args):
        with self._lock:
            return self.conn.execute(sql, args).fetchone()

    # counters: monotonic numbers that survive restarts (snapshot ids)
    def next_counter(self, name: str) -> int:
        with self.tx() as c:
            row = c.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()
            value = (row[0] if row else 0) + 1
            c.execute("INSERT OR REPLACE INTO counters(name, value) VALUES(?, ?)", (name, value))
            return value

    # images and tags
    def put_image(self, image_id: str, created: float, record: dict) -> None:
        with self.tx() as c:
            c.execute("INSERT OR REPLACE INTO images(id, created, record) VALUES(?,?,?)",
                      (image_id, created, dumps(record)))

    def get_image(self, image_id: str) -> dict | None:
        row = self.q1("SELECT record FROM images WHERE id=?", image_id)
        return loads(row[0]) if row else None

    def images(self) -> list[tuple[str, float, dict]]:
        return [(i, c, loads(r)) for i, c, r in
                self.q("SELECT id, created, record FROM images ORDER BY created DESC")]

    def image_ids_with_prefix(self, prefix: str) -> list[str]:
        return [r[0] for r in self.q("SELECT id FROM images WHERE id >= ? AND id < ?",
                                     prefix, prefix + "\uffff")]

    def delete_image(self, image_id: str) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM images WHERE id=?", (image_id,))
            c.execute("DELETE FROM tags WHERE image_id=?", (image_id,))

    def set_tag(self, name: str, image_id: str, created: float) -> str | None:
        """Point name at image_id; returns the image it pointed at before."""
        with self.tx() as c:
            row = c.execute("SELECT image_id FROM tags WHERE name=?", (name,)).fetchone()
            c.execute("INSERT OR REPLACE INTO tags(name, image_id, created) VALUES(?,?,?)",
                      (name, image_id, created))
            return row[0] if row else None

    def get_tag(self, name: str) -> str | None:
        row = self.q1("SELECT image_id FROM tags WHERE name=?", name)
        return row[0] if row else None

    def delete_tag(self, name: str) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM tags WHERE name=?", (name,))

    def tags(self) -> list[tuple[str, str]]:
        return self.q("SELECT name, image_id FROM tags ORDER BY name")

    def tags_of(self, image_id: str) -> list[str]:
        return [r[0] for r in self.q("SELECT name FROM tags WHERE image_id=? ORDER BY name",
                                     image_id)]

    # containers
    def add_container(self, cid: str, name: str, created: float, image_id: str,
                      record: dict, state: dict) -> None:
        try:
            with self.tx() as c:
                c.execute("INSERT INTO containers(id, name, created, image_id, record, state)"
                          " VALUES(?,?,?,?,?,?)", (cid, name, created, image_id,
                                                   dumps(record), dumps(state)))
        except sqlite3.IntegrityError:
            raise AlreadyExists(f'the container name "/{name}" is already in use') from None

    def container(self, cid: str) -> tuple[dict, dict]:
        row = self.q1("SELECT record, state FROM containers WHERE id=?", cid)
        if not row:
            raise NotFound(f"no such container: {cid}")
        return loads(row[0]), loads(row[1])

    def containers(self) -> list[tuple[dict, dict]]:
        return [(loads(r), loads(s)) for r, s in
                self.q("SELECT record, state FROM containers ORDER BY created DESC")]

    def container_ids(self) -> list[tuple[str, str]]:
        return self.q("SELECT id, name FROM containers")

    def save_state(self, cid: str, state: dict) -> None:
        with self.tx() as c:
            c.execute("UPDATE containers SET state=? WHERE id=?", (dumps(state), cid))

    def update_state(self, cid: str, changes: dict) -> dict:
        """Merge `changes` into the container's state atomically; returns the new state."""
        with self.tx() as c:
            row = c.execute("SELECT state FROM containers WHERE id=?", (cid,)).fetchone()
            if not row:
                raise NotFound(f"no such container: {cid}")
            state = {**loads(row[0]), **changes}
            c.execute("UPDATE containers SET state=? WHERE id=?", (dumps(state), cid))
            return state

    def claim(self, cid: str, key: str, owner: list, held) -> bool:
        """Set state[key] = owner in one transaction, unless the container is gone or
        held(current owner) says another live process has it. True when claimed."""
        with self.tx() as c:
            row = c.execute("SELECT state FROM containers WHERE id=?", (cid,)).fetchone()
            if not row:
                return False
            state = loads(row[0])
            current = state.get(key)
            if current and current != owner and held(current):
                return False
            state[key] = owner
            c.execute("UPDATE containers SET state=? WHERE id=?", (dumps(state), cid))
            return True

    def save_record(self, cid: str, record: dict) -> None:
        with self.tx() as c:
            c.execute("UPDATE containers SET record=?, name=? WHERE id=?",
                      (dumps(record), record["Name"].lstrip("/"), cid))

    def delete_container(self, cid: str) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM containers WHERE id=?", (cid,))

    def containers_using_image(self, image_id: str) -> list[str]:
        return [r[0] for r in self.q("SELECT id FROM containers WHERE image_id=?", image_id)]

    # volumes
    def put_volume(self, name: str, created: float, record: dict) -> None:
        with self.tx() as c:
            c.execute("INSERT OR REPLACE INTO volumes(name, created, record) VALUES(?,?,?)",
                      (name, created, dumps(record)))

    def get_volume(self, name: str) -> dict | None:
        row = self.q1("SELECT record FROM volumes WHERE name=?", name)
        return loads(row[0]) if row else None

    def volumes(self) -> list[dict]:
        return [loads(r[0]) for r in self.q("SELECT record FROM volumes ORDER BY name")]

    def delete_volume(self, name: str) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM volumes WHERE name=?", (name,))

    # networks, and the addresses their endpoints lease (kade.engine.networks)
    def add_network(self, nid: str, name: str, created: float, record: dict) -> None:
        try:
            with self.tx() as c:
                c.execute("INSERT INTO networks(id, name, created, record) VALUES(?,?,?,?)",
                          (nid, name, created, dumps(record)))
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"network with name {name} already exists") from None

    def networks(self) -> list[dict]:
        return [loads(r[0]) for r in self.q("SELECT record FROM networks ORDER BY created")]

    def delete_network(self, nid: str) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM networks WHERE id=?", (nid,))
            c.execute("DELETE FROM leases WHERE network_id=?", (nid,))

    def lease(self, nid: str, cid: str, owner: str, choose) -> str:
        """Take the address choose(used addresses) returns, in one transaction."""
        with self.tx() as c:
            used = [r[0] for r in c.execute("SELECT address FROM leases WHERE network_id=?",
                                            (nid,))]
            address = choose(used)
            c.execute("INSERT INTO leases(network_id, address, container_id, owner) "
                      "VALUES(?,?,?,?)", (nid, address, cid, owner))
            return address

    def leases(self) -> list[tuple[str, str, str, str]]:
        return self.q("SELECT network_id, address, container_id, owner FROM leases")

    def release(self, cid: str, nid: str | None = None) -> None:
        with self.tx() as c:
            if nid is None:
                c.execute("DELETE FROM leases WHERE container_id=?", (cid,))
            else:
                c.execute("DELETE FROM leases WHERE container_id=? AND network_id=?",
                          (cid, nid))

    # the build cache: a step's cache key -> the image it made
    def cache_get(self, key: str) -> str | None:
        row = self.q1("SELECT image_id FROM build_cache WHERE key=?", key)
        return row[0] if row else None

    def cache_put(self, key: str, image_id: str, now: float) -> None:
        with self.tx() as c:
            c.execute("INSERT INTO build_cache(key, image_id, created, last_used) "
                      "VALUES(?,?,?,?) ON CONFLICT(key) DO UPDATE SET image_id=excluded.image_id,"
                      " last_used=excluded.last_used", (key, image_id, now, now))

    def cache_touch(self, keys: list[str], now: float) -> None:
        with self.tx() as c:
            c.executemany("UPDATE build_cache SET last_used=? WHERE key=?",
                          [(now, k) for k in keys])

    def cache_entries(self) -> list[tuple[str, str, float, float]]:
        return self.q("SELECT key, image_id, created, last_used FROM build_cache "
                      "ORDER BY last_used")

    def cache_delete(self, keys: list[str]) -> None:
        with self.tx() as c:
            c.executemany("DELETE FROM build_cache WHERE key=?", [(k,) for k in keys])

    # events
    def add_event(self, t: float, record: dict) -> None:
        with self.tx() as c:
            c.execute("INSERT INTO events(time, record) VALUES(?, ?)", (t, dumps(record)))
            c.execute("DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - 10000")

    def events(self, after_seq: int = 0, since: float = 0.0) -> list[tuple[int, dict]]:
        return [(s, loads(r)) for s, r in
                self.q("SELECT seq, record FROM events WHERE seq > ? AND time >= ? ORDER BY seq",
                       after_seq, since)]


def open_db(root: str) -> DB:
    os.makedirs(root, exist_ok=True)
    return DB(os.path.join(root, "kade.db"))
