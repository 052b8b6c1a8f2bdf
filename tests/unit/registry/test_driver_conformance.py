"""The storage driver conformance suite: every test runs against every driver.

A new driver is added to DRIVERS and must pass all of it (the contract is the
docstring of kade.registry.driver)."""

from __future__ import annotations

import threading

import pytest

from kade.registry.driver import InvalidPath, PathNotFound, walk
from kade.registry.driver.filesystem import FilesystemDriver
from kade.registry.driver.inmemory import InMemoryDriver

DRIVERS = {
    "filesystem": lambda tmp_path: FilesystemDriver(str(tmp_path / "root")),
    "inmemory": lambda tmp_path: InMemoryDriver(),
}


@pytest.fixture(params=sorted(DRIVERS))
def driver(request, tmp_path):
    return DRIVERS[request.param](tmp_path)


def test_put_then_get(driver):
    driver.put_content("/a/b/c", b"hello")
    assert driver.get_content("/a/b/c") == b"hello"


def test_put_replaces(driver):
    driver.put_content("/a", b"one")
    driver.put_content("/a", b"two, longer")
    assert driver.get_content("/a") == b"two, longer"


def test_empty_content(driver):
    driver.put_content("/empty", b"")
    assert driver.get_content("/empty") == b""
    assert driver.stat("/empty").size == 0


def test_get_missing(driver):
    with pytest.raises(PathNotFound):
        driver.get_content("/nothing/here")


def test_stat_file_and_directory(driver):
    driver.put_content("/dir/file", b"12345")
    info = driver.stat("/dir/file")
    assert (info.path, info.size, info.is_dir) == ("/dir/file", 5, False)
    assert driver.stat("/dir").is_dir


def test_stat_missing(driver):
    with pytest.raises(PathNotFound):
        driver.stat("/missing")


def test_list_children_sorted(driver):
    for p in ("/r/b/x", "/r/a", "/r/c/y/z"):
        driver.put_content(p, b".")
    assert driver.list("/r") == ["a", "b", "c"]
    assert driver.list("/r/c") == ["y"]


def test_list_root(driver):
    driver.put_content("/top/x", b".")
    assert "top" in driver.list("/")


def test_list_missing(driver):
    with pytest.raises(PathNotFound):
        driver.list("/nope")


def test_reader_from_offset(driver):
    driver.put_content("/blob", bytes(range(256)) * 10)
    with driver.reader("/blob", 250) as f:
        assert f.read(10) == bytes([250, 251, 252, 253, 254, 255, 0, 1, 2, 3])
    with driver.reader("/blob") as f:
        assert f.read() == bytes(range(256)) * 10


def test_reader_missing(driver):
    with pytest.raises(PathNotFound):
        driver.reader("/missing")


def test_writer_commit(driver):
    w = driver.writer("/up/data")
    w.write(b"abc")
    w.write(memoryview(b"defg"))
    assert w.size == 7
    w.commit()
    assert driver.get_content("/up/data") == b"abcdefg"


def test_writer_close_then_append(driver):
    w = driver.writer("/up/data")
    w.write(b"first;")
    w.close()
    w = driver.writer("/up/data", append=True)
    assert w.size == 6
    w.write(b"second")
    w.commit()
    assert driver.get_content("/up/data") == b"first;second"


def test_writer_without_append_truncates(driver):
    driver.put_content("/up/data", b"old content")
    w = driver.writer("/up/data")
    w.write(b"new")
    w.commit()
    assert driver.get_content("/up/data") == b"new"


def test_writer_cancel_removes(driver):
    w = driver.writer("/up/data")
    w.write(b"abc")
    w.cancel()
    with pytest.raises(PathNotFound):
        driver.stat("/up/data")


def test_move(driver):
    driver.put_content("/src/data", b"payload")
    driver.move("/src/data", "/dst/deep/data")
    assert driver.get_content("/dst/deep/data") == b"payload"
    with pytest.raises(PathNotFound):
        driver.get_content("/src/data")


def test_move_replaces_destination(driver):
    driver.put_content("/src", b"new")
    driver.put_content("/dst", b"old")
    driver.move("/src", "/dst")
    assert driver.get_content("/dst") == b"new"


def test_move_missing(driver):
    with pytest.raises(PathNotFound):
        driver.move("/missing", "/dst")


def test_delete_file(driver):
    driver.put_content("/d/f", b".")
    driver.put_content("/d/g", b".")
    driver.delete("/d/f")
    assert driver.list("/d") == ["g"]


def test_delete_directory_recursively(driver):
    for p in ("/tree/a/b", "/tree/a/c/d", "/keep/x"):
        driver.put_content(p, b".")
    driver.delete("/tree")
    with pytest.raises(PathNotFound):
        driver.stat("/tree")
    with pytest.raises(PathNotFound):
        driver.get_content("/tree/a/c/d")
    assert driver.get_content("/keep/x") == b"."


def test_delete_missing(driver):
    with pytest.raises(PathNotFound):
        driver.delete("/missing")


@pytest.mark.parametrize("bad", ["", "relative", "/a/../b", "/..", "/a/./b", "/a//b", "/a/",
                                 "/a b", "/a\0b", "/a/\u00e9"])
def test_invalid_paths_are_refused(driver, bad):
    with pytest.raises(InvalidPath):
        driver.put_content(bad, b".")
    with pytest.raises(InvalidPath):
        driver.get_content(bad)


def test_walk_yields_every_file(driver):
    for p in ("/w/a/1", "/w/a/2", "/w/b/c/3", "/w/4"):
        driver.put_content(p, p.encode())
    assert sorted(i.path for i in walk(driver, "/w")) == ["/w/4", "/w/a/1", "/w/a/2", "/w/b/c/3"]


def test_concurrent_puts_leave_one_whole_value(driver):
    values = [bytes([i]) * 100_000 for i in range(8)]

    def put(v):
        for _ in range(5):
            driver.put_content("/race", v)

    threads = [threading.Thread(target=put, args=(v,)) for v in values]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert driver.get_content("/race") in values
