"""Fixtures of the Railway suite: the fake Railway API on loopback, and Ansible without a platform database."""

from __future__ import annotations

import pytest

from tests.harness.railway_fake import RailwayFake
from tests.helpers import Ansible


@pytest.fixture
def railway():
    """A fresh fake Railway API with one workspace ``federation`` and an account token (``railway.token``)."""
    with RailwayFake() as fake:
        fake.workspace_id = fake.add_workspace('federation')
        fake.token = fake.account_token()
        yield fake


@pytest.fixture
def controller(fed_home):
    """Runs modules and playbooks from the repository; no platform database needed."""
    return Ansible(fed_home, None)
