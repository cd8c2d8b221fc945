"""Shared values of the Railway suite."""

from __future__ import annotations

MODULE = 'federation.platform.railway_service'

SECRETS = {'DB_POSTGRESDB_PASSWORD': 'Secret-db-password-0001', 'N8N_ENCRYPTION_KEY': 'Secret-encryption-key-0001'}


def service_args(railway, **overrides):
    """The options of a typical department service against ``railway``."""
    args = dict(
        api_token=railway.token,
        endpoint=railway.url,
        project='federation-finance',
        service='federation-finance-n8n',
        image='registry.example.test/federation/aio:1.0.0',
        variables={'DB_TYPE': 'postgresdb', 'N8N_PORT': 5678, 'N8N_DIAGNOSTICS_ENABLED': False,
                   # Ansible templates ad-hoc arguments: the raw block keeps Railway's reference as written.
                   'WEBHOOK_URL': 'https://{% raw %}${{RAILWAY_PUBLIC_DOMAIN}}{% endraw %}/'},
        secret_variables=dict(SECRETS),
        healthcheck_path='/healthz',
        service_domain=True,
        target_port=5678,
        volume_mount_path='/home/node/.n8n',
        poll_interval=0.05,
        wait_timeout=30,
    )
    args.update(overrides)
    return args
