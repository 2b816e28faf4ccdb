from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from flows_support import FakeHost

from nexflow.flows import FlowEngine


@pytest.fixture
def host() -> FakeHost:
    return FakeHost()


@pytest.fixture
async def engine(tmp_path: Path, host: FakeHost) -> AsyncIterator[FlowEngine]:
    eng = FlowEngine(
        host, home=tmp_path / "home", concurrency=4, queue_poll_s=0.05, notify_poll_s=0.05
    )
    yield eng
    await eng.close()
