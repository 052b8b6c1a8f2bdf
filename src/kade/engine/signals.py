"""Signal names and numbers as docker accepts them (`--stop-signal`, `kill -s`): a leaf,
so that validating a record does not import the lifecycle that sends them."""

from __future__ import annotations

from kade.errors import InvalidArgument


def parse_signal(text: str | int) -> int:
    import signal as _signal
    if isinstance(text, int) or str(text).isdigit():
        num = int(text)
        if not 0 < num < 65:
            raise InvalidArgument(f"invalid signal: {text}")
        return num
    name = str(text).upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(getattr(_signal.Signals, name))
    except AttributeError:
        raise InvalidArgument(f"invalid signal: {text}") from None
