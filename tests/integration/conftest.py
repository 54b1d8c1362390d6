from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from signaling.peer import restrict_ice_addresses
from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(data_dir=Path(tmp_path_factory.mktemp("hearth-data")))
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(autouse=True)
def loopback_media() -> Iterator[None]:
    # The scripted peers offer only 127.0.0.1, like the server under test.
    restrict_ice_addresses(("127.0.0.1",))
    yield
    restrict_ice_addresses(())
