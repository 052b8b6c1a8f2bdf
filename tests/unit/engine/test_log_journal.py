"""The log journal (kade.engine.logs.Journal): whatever moment a worker dies at, the
next one writes every line of the container's output into the log exactly once."""

import json
import os

from kade.engine.logs import Journal


def _pipe_with(data: bytes) -> int:
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    return r


def _log_lines(path) -> list[str]:
    return [json.loads(line)["log"] for line in open(path, "rb").read().splitlines()]


def _pump(journal: Journal, data: bytes) -> None:
    r = _pipe_with(data)
    while journal.take("stdout", r, False) is not None:
        pass
    os.close(r)


def test_lines_go_to_the_log_once_and_a_partial_line_waits(tmp_path):
    log = tmp_path / "c-json.log"
    journal = Journal(str(tmp_path), str(log), fresh=True)
    _pump(journal, b"one\ntwo\nthr")
    assert _log_lines(log) == ["one\n", "two\n"]
    _pump(journal, b"ee\n")
    journal.close()
    assert _log_lines(log) == ["one\n", "two\n", "three\n"]


def _intent(journal: Journal, log, data: bytes, torn: bytes) -> None:
    """The state a worker leaves when killed right after recording its intent to log
    `data` (already in the journal): `torn` is what of the log write landed."""
    size = os.path.getsize(log)
    end = journal.end["stdout"]
    os.pwrite(journal.fds["stdout"], data, end)
    values = (end + len(data), 0, 0, len(data), size, size + 100)
    os.pwrite(journal.rec, b"".join(v.to_bytes(8, "little") for v in values), 0)
    with open(log, "ab") as f:
        f.write(torn)


def test_a_worker_killed_between_its_intent_and_its_log_write_loses_nothing(tmp_path):
    log = tmp_path / "c-json.log"
    journal = Journal(str(tmp_path), str(log), fresh=True)
    _pump(journal, b"0\n1\n")
    _intent(journal, log, b"2\n3\n", b"")
    os.pwrite(journal.fds["stdout"], b"4\n", 8)  # what the keeper spilled meanwhile
    adopted = Journal(str(tmp_path), str(log), fresh=False)
    adopted.close()
    assert _log_lines(log) == ["0\n", "1\n", "2\n", "3\n", "4\n"]


def test_a_torn_log_write_is_cut_back_and_written_again(tmp_path):
    log = tmp_path / "c-json.log"
    journal = Journal(str(tmp_path), str(log), fresh=True)
    _pump(journal, b"0\n1\n")
    _intent(journal, log, b"2\n3\n", b'{"log": "2\\n", "str')
    adopted = Journal(str(tmp_path), str(log), fresh=False)
    adopted.close()
    assert _log_lines(log) == ["0\n", "1\n", "2\n", "3\n"]


def test_a_worker_killed_after_its_log_write_does_not_double_a_line(tmp_path):
    log = tmp_path / "c-json.log"
    journal = Journal(str(tmp_path), str(log), fresh=True)
    _pump(journal, b"0\n1\n")
    adopted = Journal(str(tmp_path), str(log), fresh=False)  # no close: the kill
    adopted.close()
    assert _log_lines(log) == ["0\n", "1\n"]
