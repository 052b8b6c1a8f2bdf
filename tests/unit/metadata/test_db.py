import pytest

from kade.errors import AlreadyExists
from kade.metadata import open_db


def test_schema_is_created_and_versioned(tmp_path):
    db = open_db(str(tmp_path))
    assert db.q1("PRAGMA user_version")[0] >= 1
    again = open_db(str(tmp_path))  # reopening migrates nothing twice
    assert again.q1("PRAGMA user_version")[0] == db.q1("PRAGMA user_version")[0]


def test_container_names_are_unique(tmp_path):
    db = open_db(str(tmp_path))
    db.add_container("a" * 64, "web", 1.0, "sha256:x", {"Name": "/web"}, {})
    with pytest.raises(AlreadyExists):
        db.add_container("b" * 64, "web", 1.0, "sha256:x", {"Name": "/web"}, {})


def test_update_state_merges(tmp_path):
    db = open_db(str(tmp_path))
    db.add_container("a" * 64, "web", 1.0, "sha256:x", {"Name": "/web"}, {"Status": "created"})
    new = db.update_state("a" * 64, {"Running": True})
    assert new == {"Status": "created", "Running": True}


def test_failed_transaction_rolls_back(tmp_path):
    db = open_db(str(tmp_path))
    with pytest.raises(RuntimeError):
        with db.tx() as c:
            c.execute("INSERT INTO volumes(name, created, record) VALUES('v', 1, '{}')")
            raise RuntimeError("crash")
    assert db.volumes() == []
