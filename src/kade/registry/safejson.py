"""JSON from clients and from storage, where nesting too deep is just bad JSON.

json.loads answers a document nested deeper than the recursion limit (a
100,000-deep `[[[...]]]` fits in a 4 MiB manifest) with RecursionError, which
no `except ValueError` catches: the request would end in a 500. Here it is a
ValueError like any other malformed document.
"""

from __future__ import annotations

import json


def loads(data: "bytes | str"):
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
