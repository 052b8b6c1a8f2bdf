import pytest

from kade.errors import InvalidArgument
from kade.images.changes import apply


def test_changes_like_docker_import():
    cfg = apply({}, ['CMD ["sh"]', "ENV A=1 B=2", "ENV C hello world", "EXPOSE 80 53/udp",
                     "WORKDIR /app", "USER nobody", 'LABEL a=b', "VOLUME /data",
                     "ENTRYPOINT echo hi"])
    assert cfg["Cmd"] == ["sh"]
    assert cfg["Env"] == ["A=1", "B=2", "C=hello world"]
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert cfg["WorkingDir"] == "/app" and cfg["User"] == "nobody"
    assert cfg["Labels"] == {"a": "b"} and cfg["Volumes"] == {"/data": {}}
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "echo hi"]


def test_unknown_change_is_refused():
    with pytest.raises(InvalidArgument, match="RUN is not a valid change command"):
        apply({}, ["RUN echo"])
