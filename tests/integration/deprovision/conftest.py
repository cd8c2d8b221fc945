"""Fixtures of the deprovisioning suite: Ansible on the controller, the Vault stand-in, the Railway fake."""

from __future__ import annotations

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

from tests.harness.railway_fake import RailwayFake
from tests.harness.vault_fake import VaultFake
from tests.helpers import Ansible


@pytest.fixture
def runner(fed_home):
    """Ansible without a platform database (the secrets actions run on the controller only)."""
    return Ansible(fed_home, None)


@pytest.fixture
def vault():
    """A fresh HashiCorp Vault KV v2 stand-in with a 'secret' mount."""
    server = VaultFake().start()
    yield server
    server.stop()


@pytest.fixture
def railway():
    """A fresh fake Railway API with one workspace and an account token (``railway.token``)."""
    with RailwayFake() as fake:
        fake.workspace_id = fake.add_workspace('federation')
        fake.token = fake.account_token()
        yield fake


def decrypt(home, path):
    """The document of an ansible-vault file encrypted with the home's vault password."""
    password = (home / 'vault-password').read_text().strip()
    lib = VaultLib([('default', VaultSecret(password.encode()))])
    return yaml.safe_load(lib.decrypt(path.read_bytes()))
