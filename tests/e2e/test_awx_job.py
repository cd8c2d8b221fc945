"""provision.yml run the way AWX runs a job template: through ansible-runner, AWX's own job runner.

What AWX does and this test does too:
- a project update checks the repository out and installs ``collections/requirements.yml`` into a
  folder of the job's, which ANSIBLE_COLLECTIONS_PATH names (the checkout has no ``.collections``);
- every job gets a private data folder of its own, the survey answer ``dept`` as an extra variable,
  and its credentials as environment variables (the vault password, the platform database, the
  HashiCorp Vault address and token);
- job containers are thrown away: nothing a job writes to its own disk is there for the next one, so
  the secrets live in Vault (here the KV v2 stand-in) and every job gets an empty FEDERATION_HOME.
The API gateway, which under AWX runs on a host of its own, keeps its folder outside the jobs (a folder
of the test's, standing for that host). AWX itself (a Kubernetes operator) does not run here.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import uuid

import ansible_runner
import pytest

from tests.harness.common import free_port
from tests.harness.docker_objects import PostgresContainer, build_images, inspect, remove_prefixed, unique_prefix
from tests.harness.vault_fake import VaultFake
from tests.helpers import REPO, VENV_BIN, query, stop_gateway

DEPT = 'finance'


def checkout(dest):
    """The project as a project update checks it out: the repository's files, nothing built or installed."""
    listed = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=str(REPO),
                            capture_output=True, check=True).stdout.decode().split('\0')
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@pytest.fixture(scope='module')
def awx(tmp_path_factory):
    base = tmp_path_factory.mktemp('awx')
    project = checkout(base / 'project')
    assert not (project / '.collections').exists()
    collections = base / 'requirements_collections'
    update = subprocess.run([str(VENV_BIN / 'ansible-galaxy'), 'collection', 'install', '-r',
                             'collections/requirements.yml', '-p', str(collections)],
                            cwd=str(project), capture_output=True, text=True, check=False)
    assert update.returncode == 0, update.stdout + update.stderr
    assert (collections / 'ansible_collections/federation/platform/MANIFEST.json').is_file()

    gateway_host = base / 'gateway-host'
    vault = VaultFake().start()
    prefix = unique_prefix('fede')
    database = PostgresContainer(prefix=unique_prefix('fepg'), image=build_images()['postgres']).start()
    db = database.conninfo
    # What the job template's credentials inject into every job.
    credentials = {
        'FEDERATION_VAULT_PASSWORD': secrets.token_urlsafe(24),
        'FEDERATION_SECRETS_BACKEND': 'hashi_vault',
        # finance has a phone line: the telephony account's auth token.
        'FEDERATION_TWILIO_AUTH_TOKEN': secrets.token_hex(16),
        'VAULT_ADDR': vault.url,
        'VAULT_TOKEN': vault.root_token,
        'FEDERATION_PLATFORM_DB_HOST': db['host'],
        'FEDERATION_PLATFORM_DB_PORT': str(db['port']),
        'FEDERATION_PLATFORM_DB_USER': db['user'],
        'FEDERATION_PLATFORM_DB_PASSWORD': db['password'],
        'FEDERATION_PLATFORM_DB_NAME': db['dbname'],
        'FEDERATION_PLATFORM_DB_CONTAINER': database.name,
        'FEDERATION_DOCKER_PREFIX': prefix,
        'FEDERATION_PROXY_PORT': str(free_port()),
        'FEDERATION_GATEWAY_PORT': str(free_port()),
        'FEDERATION_GATEWAY_PEER_PORT': str(free_port()),
        'ANSIBLE_COLLECTIONS_PATH': str(collections),
        'ANSIBLE_NOCOLOR': '1',
        # The execution environment's programs.
        'PATH': '%s:%s' % (VENV_BIN, os.environ.get('PATH', '')),
    }

    class Awx(object):
        def job(self, dept=DEPT, job_type='run', **extra):
            """One job of the template 'provision' in a fresh private data folder and a fresh FEDERATION_HOME."""
            private = base / ('job-' + uuid.uuid4().hex[:8])
            home = private / 'federation-home'
            home.mkdir(parents=True, mode=0o700)
            extravars = {'dept': dept, 'api_gateway_dir': str(gateway_host / 'gateway')}
            extravars.update(extra)
            run = ansible_runner.run(
                private_data_dir=str(private), project_dir=str(project), playbook='provision.yml',
                inventory=str(project / 'inventories/local/hosts.yml'), extravars=extravars,
                envvars=dict(credentials, FEDERATION_HOME=str(home)), quiet=True,
                cmdline='--check' if job_type == 'check' else None)
            run.output = run.stdout.read()
            run.home = home
            return run

    site = Awx()
    site.db, site.vault, site.credentials, site.prefix = db, vault, credentials, prefix
    yield site
    stop_gateway(gateway_host)
    vault.stop()
    remove_prefixed(prefix)
    remove_prefixed(database.prefix)


def changed(run):
    return sum((run.stats or {}).get('changed', {}).values())


def test_a_job_provisions_the_department(awx):
    run = awx.job()
    assert (run.status, run.rc) == ('successful', 0), run.output[-5000:]
    assert changed(run) > 0
    assert query(awx.db, "SELECT state FROM federation_control.departments WHERE name = %s", (DEPT,)) == [('active',)]
    container = inspect('%s-%s-n8n' % (awx.prefix, DEPT))
    assert container and container['State']['Health']['Status'] == 'healthy'
    stored = awx.vault.read('secret', 'federation/%s' % DEPT)
    assert {'tenant_db_password', 'n8n_owner_password', 'n8n_encryption_key'} <= set(stored)
    assert not (run.home / 'secrets').exists(), 'the secrets are in Vault, not on the job\'s disk'
    for name, value in stored.items():
        if not name.startswith('_') and isinstance(value, str) and len(value) >= 12:
            assert value not in run.output, 'secret %s in the job output' % name
    for name in ('FEDERATION_VAULT_PASSWORD', 'VAULT_TOKEN', 'FEDERATION_PLATFORM_DB_PASSWORD', 'FEDERATION_TWILIO_AUTH_TOKEN'):
        assert awx.credentials[name] not in run.output, name


def test_the_next_job_in_a_fresh_container_changes_nothing(awx):
    run = awx.job()
    assert (run.status, run.rc) == ('successful', 0), run.output[-5000:]
    assert changed(run) == 0, run.output[-5000:]


def test_a_check_job_changes_nothing(awx):
    before = awx.vault.current_version('secret', 'federation/%s' % DEPT)
    run = awx.job(job_type='check')
    assert (run.status, run.rc) == ('successful', 0), run.output[-5000:]
    assert changed(run) == 0, run.output[-5000:]
    assert awx.vault.current_version('secret', 'federation/%s' % DEPT) == before


def test_a_bad_survey_answer_fails_the_job_before_any_change(awx):
    run = awx.job(dept='Finance; DROP TABLE x')
    assert run.status == 'failed' and run.rc != 0
    assert "department name 'Finance; DROP TABLE x' is not allowed" in run.output, run.output[-3000:]
    assert changed(run) == 0
    assert query(awx.db, "SELECT count(*) FROM federation_control.departments") == [(1,)]
