"""A department with ``target: railway`` provisioned end to end (provision.yml) against the fake Railway API.

No n8n runs behind the fake's service domain (its edge answers the health check only), so these runs
switch the n8n content off (federation_n8n_content_enabled=false); everything else of provisioning runs,
the gateway route to the Railway domain included.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import query, read_vault_file, recap

DEPT = 'field-ops'
SERVICE = 'federation-field-ops-n8n'
PROJECT = 'federation-field-ops'


@pytest.fixture
def departments(tmp_path):
    folder = tmp_path / 'departments'
    folder.mkdir()
    (folder / ('%s.yml' % DEPT)).write_text('display_name: Field Operations\ntarget: railway\ntools: [log_call]\n')
    return folder


def run(ansible, playbook, railway, departments, *extra, env=None):
    settings = {
        'federation_departments_dir': str(departments),
        'aio_instance_railway_endpoint': railway.url,
        'aio_instance_railway_url_template': railway.edge_template,
        'aio_instance_railway_registry': 'registry.example.test',
        'aio_instance_railway_image_tag': '1.0.0',
        'aio_instance_railway_poll_interval': 0.05,
        'aio_instance_railway_health_delay': 1,
        'aio_instance_railway_health_timeout': 3,
        'federation_n8n_content_enabled': False,
    }
    return ansible.playbook(playbook, '-e', 'dept=%s' % DEPT, '-e', json.dumps(settings), *extra,
                            env=dict({'RAILWAY_API_TOKEN': railway.token}, **(env or {})))


def secrets_of(home):
    return read_vault_file(home, home / 'secrets' / ('%s.yml' % DEPT))['secrets']


def registry_state(db):
    return query(db, 'SELECT state, last_error FROM federation_control.departments WHERE name = %s', (DEPT,))[0]


def test_railway_department_provisions_and_reruns_without_mutation(ansible, platform_db, fed_home, railway, departments, tmp_path):
    playbook = 'provision.yml'

    first = run(ansible, playbook, railway, departments)
    assert first.returncode == 0, first.stdout[-5000:] + first.stderr[-2000:]
    assert recap(first.stdout)['changed'] > 0
    assert railway.violations() == [], 'requests Railway would refuse'
    assert railway.unsupported() == []
    assert registry_state(platform_db) == ('active', None)

    project = railway.find_project(PROJECT)
    service = railway.find_service(project['id'], SERVICE)
    env = railway.find_environment(project['id'], 'production')
    assert railway.instances[(service['id'], env['id'])]['source']['image'] == 'registry.example.test/federation/aio:1.0.0'
    deployments = railway.service_deployments(service['id'])
    assert [d['status'] for d in deployments] == ['SUCCESS'], 'exactly one deployment, and it succeeded'

    stored = railway.variables[(env['id'], service['id'])]
    secrets = secrets_of(fed_home)
    assert stored['DB_POSTGRESDB_PASSWORD'] == secrets['n8n_db_password']
    assert stored['N8N_ENCRYPTION_KEY'] == secrets['n8n_encryption_key']
    assert stored['DB_POSTGRESDB_DATABASE'] == stored['DB_POSTGRESDB_USER'] == 'n8n_field_ops'
    assert stored['DB_TYPE'] == 'postgresdb' and stored['N8N_DIAGNOSTICS_ENABLED'] == 'false'
    assert stored['WEBHOOK_URL'] == 'https://${{RAILWAY_PUBLIC_DOMAIN}}/', 'the reference reaches Railway unrendered'
    domain = next(d for d in railway.domains.values() if d['serviceId'] == service['id'])
    assert domain['targetPort'] == 5678
    assert any(vi['serviceId'] == service['id'] and vi['mountPath'] == '/home/node/.n8n' for vi in railway.volume_instances.values())
    assert railway.edge_requests and railway.edge_requests[-1] == (domain['domain'], '/rest/settings', 200), \
        'the health wait went through the service domain'
    for value in (secrets['n8n_db_password'], secrets['n8n_encryption_key'], railway.token):
        assert value not in first.stdout + first.stderr

    mark = railway.mark()
    second = run(ansible, playbook, railway, departments, '-vvv')
    assert second.returncode == 0, second.stdout[-5000:]
    assert recap(second.stdout)['changed'] == 0
    for value in (secrets['n8n_db_password'], secrets['n8n_encryption_key'], railway.token):
        assert value not in second.stdout + second.stderr, 'a secret in the verbose output'
    assert railway.mutations(mark) == [], 'a re-run sends no mutation'
    assert railway.violations() == []
    assert len(railway.service_deployments(service['id'])) == 1

    mark = railway.mark()
    checked = run(ansible, playbook, railway, departments, '--check', '--diff')
    assert checked.returncode == 0, checked.stdout[-5000:]
    assert recap(checked.stdout)['changed'] == 0
    assert railway.mutations(mark) == []
    assert railway.violations() == []


def test_failed_deployment_marks_the_department_failed_and_a_rerun_converges(ansible, platform_db, railway, departments, tmp_path):
    playbook = 'provision.yml'
    railway.deploy_outcomes.append('FAILED')

    failed = run(ansible, playbook, railway, departments)
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    assert "department '%s' failed" % DEPT in output
    assert 'ended FAILED' in output and 'manifest unknown' in output, output[-4000:]
    state, error = registry_state(platform_db)
    assert state == 'failed' and 'ended FAILED' in error
    assert railway.violations() == []

    mark = railway.mark()
    again = run(ansible, playbook, railway, departments)
    assert again.returncode == 0, again.stdout[-5000:]
    assert [r['operation'] for r in railway.mutations(mark)] == ['serviceInstanceDeployV2'], \
        'the configuration is in place: the re-run only deploys again'
    assert registry_state(platform_db) == ('active', None)


def test_unhealthy_service_fails_with_department_target_and_last_status(ansible, platform_db, railway, departments, tmp_path):
    playbook = 'provision.yml'
    # The deployment succeeds, but nothing answers behind the domain (the edge says 502).
    railway.unhealthy_all = True

    failed = run(ansible, playbook, railway, departments)
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    assert "Department '%s' (target railway)" % DEPT in output
    assert 'last status seen: HTTP 502' in output
    assert 'SUCCESS' in output  # the deployment's own status is named too
    assert registry_state(platform_db)[0] == 'failed'


def test_missing_token_fails_before_anything_changes(ansible, platform_db, railway, departments, tmp_path):
    playbook = 'provision.yml'
    result = run(ansible, playbook, railway, departments, env={'RAILWAY_API_TOKEN': '', 'RAILWAY_TOKEN': ''})
    assert result.returncode != 0
    assert "Department '%s' (target railway) cannot be provisioned: there is no Railway token" % DEPT in result.stdout
    assert railway.records() == []


def test_loopback_database_with_the_real_railway_is_refused_before_any_request(ansible, platform_db, railway, departments, tmp_path):
    playbook = 'provision.yml'
    # The platform database of the test listens on 127.0.0.1: n8n on the real Railway could never reach it.
    result = run(ansible, playbook, railway, departments, '-e', 'aio_instance_railway_endpoint=https://backboard.railway.com/graphql/v2')
    assert result.returncode != 0
    assert ("Department '%s' (target railway) cannot be provisioned: n8n on Railway cannot reach the platform database "
            "at 127.0.0.1, a loopback address" % DEPT) in result.stdout
    assert "Run n8n as a Railway service" not in result.stdout
    assert railway.records() == []


def test_check_mode_on_a_new_railway_department_predicts_change_and_sends_no_mutation(ansible, platform_db, railway, departments, tmp_path):
    playbook = 'provision.yml'
    checked = run(ansible, playbook, railway, departments, '--check', '--diff')
    assert checked.returncode == 0, checked.stdout[-5000:]
    assert recap(checked.stdout)['changed'] > 0
    assert 'would change projectCreate %s' % PROJECT in ' '.join(checked.stdout.split())
    assert railway.mutations() == [] and railway.projects == {}
    assert railway.violations() == []
