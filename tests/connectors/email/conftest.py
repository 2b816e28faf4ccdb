from collections.abc import Iterator

import pytest
from email_helpers import Collect, smtp_sink


@pytest.fixture
def smtp() -> Iterator[tuple[Collect, int]]:
    with smtp_sink() as sink:
        yield sink
