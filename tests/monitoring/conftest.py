from __future__ import annotations

from collections.abc import Iterator

import pytest

from seams.testing import FakeClock
from tests.monitoring.helpers import HangingServer, TestServer


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server() -> Iterator[TestServer]:
    s = TestServer()
    yield s
    s.close()


@pytest.fixture
def server2() -> Iterator[TestServer]:
    s = TestServer()
    yield s
    s.close()


@pytest.fixture
def hanging() -> Iterator[HangingServer]:
    s = HangingServer()
    yield s
    s.close()


@pytest.fixture(scope="session")
def smtp_cert(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from tests.monitoring.mailserver import make_cert

    return make_cert(tmp_path_factory.mktemp("smtp-cert"))
