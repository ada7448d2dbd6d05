"""Page limits read the same way on every list endpoint."""

from __future__ import annotations

import pytest

from api.queries import DEFAULT_PAGE, MAX_PAGE, page_limit
from streams.exceptions import RequestError


def test_a_limit_is_1_to_max_page_default_100() -> None:
    assert page_limit(None) == DEFAULT_PAGE
    assert page_limit("1") == 1
    assert page_limit(str(MAX_PAGE)) == MAX_PAGE


@pytest.mark.parametrize("value", ["0", "1001", "", "abc", "-1", "1.5", "²", "١٠"])
def test_anything_else_is_a_400_naming_limit(value: str) -> None:
    with pytest.raises(RequestError) as raised:
        page_limit(value)
    assert raised.value.field == "limit" and raised.value.status == 400
