"""Suite-wide fixtures."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def _stop_supervisors(tmp_path_factory):
    """Every Kade root a test made may have a container supervisor; stop the idle ones
    when the session ends rather than leave them to their idle timeout. Best effort:
    a supervisor that is exiting anyway must not fail the run."""
    yield
    from kade.engine.monitorclient import shutdown
    try:
        sockets = list(tmp_path_factory.getbasetemp().rglob("monitor.sock"))
    except OSError:
        return
    for sock in sockets:
        try:
            shutdown(str(sock.parent), wait=0)
        except (OSError, ValueError):
            continue
