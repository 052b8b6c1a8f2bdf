"""Docker's pull/push lines, on a pipe and on a terminal."""

from __future__ import annotations

import io

from kade.remotes.progress import Display, message, progress_bar


def test_pipe_prints_one_line_per_state_and_no_progress():
    out = io.StringIO()
    show = Display(out, terminal=False)
    show(message("Pulling from library/busybox", id="latest"))
    show(message("Pulling fs layer", id="abc"))
    show(message("Downloading", id="abc", current=10, total=100))
    show(message("Pull complete", id="abc"))
    show(message("Digest: sha256:x"))
    assert out.getvalue() == ("latest: Pulling from library/busybox\nabc: Pulling fs layer\n"
                              "abc: Pull complete\nDigest: sha256:x\n")


def test_terminal_redraws_each_layer_in_place():
    out = io.StringIO()
    show = Display(out, terminal=True)
    show(message("Pulling fs layer", id="a"))
    show(message("Pulling fs layer", id="b"))
    show(message("Downloading", id="a", current=50, total=100))
    show(message("Pull complete", id="a"))
    text = out.getvalue()
    assert "\x1b[2A" in text  # back up two lines to layer a
    assert "a: Downloading [=========================>" in text
    assert text.count("\n") == 2  # one line per layer, nothing scrolled


def test_progress_bar():
    assert progress_bar(0, 10).startswith("[>")
    full = progress_bar(10, 10)
    assert full.startswith("[" + "=" * 50 + "]")
    assert full.endswith("10B/10B")
