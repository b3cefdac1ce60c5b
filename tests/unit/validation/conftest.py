"""Fixtures for the validation tests (helpers live in validation_helpers.py)."""

from __future__ import annotations

import pytest
from validation_helpers import make_group

from dealer_feed.config import GroupConfig


@pytest.fixture(scope="session")
def group() -> GroupConfig:
    return make_group()
