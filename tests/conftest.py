"""Suite-wide fixtures."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def _stop_supervisors(tmp_path_factory):
    """Every Kade root a test made may have a container supervisor; stop the idle ones
    when the session ends rather than leave them to their idle timeout."""
    yield
    from kade.engine.monitorclient import shutdown
    for sock in tmp_path_factory.getbasetemp().rglob("monitor.sock"):
        shutdown(str(sock.parent))
