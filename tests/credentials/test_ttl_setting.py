"""How long a server keeps what it read of stored credentials is a setting."""

from __future__ import annotations

import pytest

from gateway.config.settings import Settings
from gateway.errors import UsageError


def test_the_ttl_is_a_setting() -> None:
    assert Settings.from_env({}).credentials_ttl == 10.0
    assert Settings.from_env({"GATEWAY_CREDENTIALS_TTL": "2s"}).credentials_ttl == 2.0
    with pytest.raises(UsageError, match="GATEWAY_CREDENTIALS_TTL: 'soon'"):
        Settings.from_env({"GATEWAY_CREDENTIALS_TTL": "soon"})
