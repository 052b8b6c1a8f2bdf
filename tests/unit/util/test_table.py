"""kade.util.table against the bytes `docker ps`, `docker images` and friends print."""

from __future__ import annotations

import pytest

from kade.errors import InvalidArgument
from kade.util.table import align, format_rows, tabwrite, text_width

PS_DEFAULT = (
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
)
PS_HEADERS = {
    "ID": "CONTAINER ID",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "RunningFor": "CREATED",
    "Status": "STATUS",
    "Ports": "PORTS",
    "Names": "NAMES",
    "Labels": "LABELS",
    "Size": "SIZE",
}
IMAGES_DEFAULT = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
IMAGES_HEADERS = {
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "ID": "IMAGE ID",
    "CreatedSince": "CREATED",
    "Size": "SIZE",
}


def test_docker_ps_with_no_containers() -> None:
    assert format_rows(PS_DEFAULT, [], PS_HEADERS) == (
        "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
    )


def test_docker_images_with_no_images() -> None:
    assert format_rows(IMAGES_DEFAULT, [], IMAGES_HEADERS) == (
        "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n"
    )


def test_docker_images() -> None:
    rows = [
        {"Repository": "busybox", "Tag": "latest", "ID": "a416a98b71e2",
         "CreatedSince": "4 weeks ago", "Size": "4.26MB"},
        {"Repository": "nginx", "Tag": "1.25-alpine", "ID": "1db5b8e5a0d8",
         "CreatedSince": "3 months ago", "Size": "42.6MB"},
    ]
    assert format_rows(IMAGES_DEFAULT, rows, IMAGES_HEADERS) == (
        "REPOSITORY   TAG           IMAGE ID       CREATED        SIZE\n"
        "busybox      latest        a416a98b71e2   4 weeks ago    4.26MB\n"
        "nginx        1.25-alpine   1db5b8e5a0d8   3 months ago   42.6MB\n"
    )


def test_docker_ps() -> None:
    rows = [
        {"ID": "3f4a9c0e5d1b", "Image": "busybox", "Command": '"sleep 3600"',
         "RunningFor": "2 minutes ago", "Status": "Up 2 minutes", "Ports": "",
         "Names": "web"},
        {"ID": "9b1c2d3e4f50", "Image": "nginx:alpine", "Command": '"/docker-entrypoint.…"',
         "RunningFor": "About an hour ago", "Status": "Exited (0) 5 minutes ago",
         "Ports": "", "Names": "proxy"},
    ]
    assert format_rows(PS_DEFAULT, rows, PS_HEADERS) == (
        "CONTAINER ID   IMAGE          COMMAND                  CREATED             "
        "STATUS                     PORTS     NAMES\n"
        '3f4a9c0e5d1b   busybox        "sleep 3600"             2 minutes ago       '
        "Up 2 minutes                         web\n"
        '9b1c2d3e4f50   nginx:alpine   "/docker-entrypoint.…"   About an hour ago   '
        "Exited (0) 5 minutes ago             proxy\n"
    )


def test_docker_network_ls() -> None:
    rows = [
        {"ID": "7fca4eb8c647", "Name": "bridge", "Driver": "bridge", "Scope": "local"},
        {"ID": "9f904ee27bf5", "Name": "host", "Driver": "host", "Scope": "local"},
        {"ID": "cf03ee007fb4", "Name": "none", "Driver": "null", "Scope": "local"},
    ]
    headers = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE"}
    fmt = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
    assert format_rows(fmt, rows, headers) == (
        "NETWORK ID     NAME      DRIVER    SCOPE\n"
        "7fca4eb8c647   bridge    bridge    local\n"
        "9f904ee27bf5   host      host      local\n"
        "cf03ee007fb4   none      null      local\n"
    )


def test_docker_volume_ls_empty() -> None:
    fmt = "table {{.Driver}}\t{{.Name}}"
    assert format_rows(fmt, [], {"Driver": "DRIVER", "Name": "VOLUME NAME"}) == (
        "DRIVER    VOLUME NAME\n"
    )


def test_user_table_with_typed_backslash_t() -> None:
    # `--format 'table {{.ID}}\t{{.Names}}'` reaches us with a backslash and a "t"
    rows = [{"ID": "abc", "Names": "web"}, {"ID": "abcdef0123456789", "Names": "db"}]
    assert format_rows("table {{.ID}}\\t{{.Names}}", rows, PS_HEADERS) == (
        "CONTAINER ID       NAMES\n"
        "abc                web\n"
        "abcdef0123456789   db\n"
    )


def test_table_of_one_column_is_not_padded() -> None:
    rows = [{"Names": "web"}, {"Names": "db"}]
    assert format_rows("table {{.Names}}", rows, PS_HEADERS) == "NAMES\nweb\ndb\n"


def test_plain_template_prints_a_line_per_row_without_header() -> None:
    rows = [{"ID": "abc", "Names": "web"}, {"ID": "def", "Names": "db"}]
    assert format_rows("{{.ID}}: {{.Names}}", rows, PS_HEADERS) == "abc: web\ndef: db\n"
    assert format_rows("{{.ID}}\\t{{.Names}}", rows, PS_HEADERS) == "abc\tweb\ndef\tdb\n"
    assert format_rows("{{.ID}}", [], PS_HEADERS) == ""


def test_json_prints_an_object_per_line_with_sorted_keys() -> None:
    rows = [{"Names": "web", "ID": "abc", "Labels": "a=<b>"}, {"Names": "db", "ID": "def"}]
    assert format_rows("json", rows, PS_HEADERS) == (
        '{"ID":"abc","Labels":"a=<b>","Names":"web"}\n{"ID":"def","Names":"db"}\n'
    )


def test_default_is_used_for_empty_and_bare_table() -> None:
    rows = [{"ID": "abc", "Names": "web"}]
    default = "table {{.ID}}\t{{.Names}}"
    expected = "CONTAINER ID   NAMES\nabc            web\n"
    assert format_rows("", rows, PS_HEADERS, default=default) == expected
    assert format_rows("table", rows, PS_HEADERS, default=default) == expected


def test_header_keeps_titles_through_docker_functions() -> None:
    rows = [{"ID": "3f4a9c0e5d1bdeadbeef", "Names": "web", "Labels": {"a": "1"}}]
    fmt = "table {{truncate .ID 4}}\t{{upper .Names}}\t{{json .Labels}}"
    assert format_rows(fmt, rows, PS_HEADERS) == (
        'CONTAINER ID   NAMES     LABELS\n'
        '3f4a           WEB       {"a":"1"}\n'
    )


def test_header_keeps_pad_like_docker() -> None:
    rows = [{"Names": "web"}]
    assert format_rows("table [{{pad .Names 1 1}}]", rows, PS_HEADERS) == "[ NAMES ]\n[ web ]\n"


def test_header_that_fails_keeps_what_it_rendered() -> None:
    class Row:
        Names = "web"

        def Label(self, key: str) -> str:
            return "shop"

    # the header data is a mapping, where .Label with an argument is an error in Go;
    # docker prints the header up to that point and carries on
    out = format_rows('table {{.Names}}\t{{.Label "project"}}', [Row()], PS_HEADERS)
    assert out == "NAMES     \nweb       shop\n"


def test_row_errors_are_raised() -> None:
    with pytest.raises(InvalidArgument, match="can't evaluate field Nope in type string"):
        format_rows("table {{.Names.Nope}}", [{"Names": "web"}], PS_HEADERS)
    with pytest.raises(InvalidArgument, match="template parsing error"):
        format_rows("table {{.Names", [], PS_HEADERS)


def test_leading_and_trailing_spaces_are_trimmed() -> None:
    rows = [{"ID": "abc"}]
    assert format_rows("  {{.ID}}  ", rows, PS_HEADERS) == "abc\n"
    assert format_rows("table   {{.ID}} ", rows, PS_HEADERS) == "CONTAINER ID\nabc\n"


def test_literal_backslash_n_is_a_newline() -> None:
    assert format_rows("{{.ID}}\\n--", [{"ID": "a"}], PS_HEADERS) == "a\n--\n"


# --- the tabwriter itself -----------------------------------------------------------


def test_align_pads_every_column_but_the_last() -> None:
    assert align(["a\tb\tc", "aaaa\tb", "x"]) == "a         b         c\naaaa      b\nx\n"


def test_column_blocks_are_runs_of_consecutive_lines() -> None:
    # Go's doc example: b and c are in different blocks, d and e in no column
    out = align(["aaaa\tbbb\td", "aa\tb\tdd", "a\t", "aa\tcccc\teee"])
    assert out == (
        "aaaa      bbb       d\n"
        "aa        b         dd\n"
        "a         \n"
        "aa        cccc      eee\n"
    )


def test_wide_cells_set_the_block_width() -> None:
    out = tabwrite("short\tx\nmuch-longer-cell\ty\n")
    assert out == "short              x\nmuch-longer-cell   y\n"


def test_empty_cells_are_padded() -> None:
    assert align(["\tb", "a\t"]) == "          b\na         \n"


def test_text_without_trailing_newline_is_kept() -> None:
    assert tabwrite("a\tb\nc") == "a         b\nc"
    assert tabwrite("") == ""
    assert align([]) == ""


def test_form_feed_ends_all_blocks() -> None:
    assert tabwrite("abcdefghijkl\tx\n\fa\ty\n") == "abcdefghijkl   x\n\na         y\n"


def test_custom_widths() -> None:
    assert tabwrite("a\tb\n", min_width=0, padding=1) == "a b\n"


def test_wide_characters_count_as_two_cells() -> None:
    assert text_width("abc") == 3
    assert text_width("日本") == 4
    assert text_width("e\u0301") == 1  # e + combining acute
    assert align(["日本語\tx", "abc\ty"]) == "日本語    x\nabc       y\n"
