"""deprovision.yml on a department with ``target: railway``, against the fake Railway API: the service is deleted
(volume too), the tenant and n8n's database are backed up and dropped, the secrets moved into the backup, and
status.yml reports the department healthy before and deleted after."""

from __future__ import annotations

import json

import pytest

from tests.helpers import query, recap

DEPT = 'field-ops'
SERVICE = 'federation-field-ops-n8n'
PROJECT = 'federation-field-ops'


@pytest.fixture
def departments(tmp_path):
    folder = tmp_path / 'departments'
    folder.mkdir()
    (folder / ('%s.yml' % DEPT)).write_text('display_name: Field Operations\ntarget: railway\ntools: [log_call]\n')
    return folder


def run(ansible, playbook, railway, departments, fed_home, *extra):
    settings = {
        'federation_departments_dir': str(departments),
        # No gateway and no n8n content: nothing real answers behind the fake Railway domain.
        'federation_gateway_enabled': False,
        'federation_n8n_content_enabled': False,
        'aio_instance_railway_endpoint': railway.url,
        'aio_instance_railway_url_template': railway.edge_template,
        'aio_instance_railway_registry': 'registry.example.test',
        'aio_instance_railway_image_tag': '1.0.0',
        'aio_instance_railway_poll_interval': 0.05,
        'aio_instance_railway_health_delay': 1,
        'aio_instance_railway_health_timeout': 3,
        'status_report': str(fed_home / 'status.json'),
    }
    return ansible.playbook(playbook, '-e', 'dept=%s' % DEPT, '-e', json.dumps(settings), *extra,
                            env={'RAILWAY_API_TOKEN': railway.token})


def test_railway_department_is_deprovisioned(ansible, clean_cluster, fed_home, railway, departments):
    db = clean_cluster
    provisioned = run(ansible, 'provision.yml', railway, departments, fed_home)
    assert provisioned.returncode == 0, provisioned.stdout[-5000:]
    project = railway.find_project(PROJECT)
    service = railway.find_service(project['id'], SERVICE)
    assert service is not None and len(railway.volumes) == 1

    # The Railway department's n8n is probed at its domain (the fake's edge answers for it).
    url = railway.edge_template.replace('{domain}', next(d['domain'] for d in railway.domains.values()
                                                         if d['serviceId'] == service['id']))
    status = run(ansible, 'status.yml', railway, departments, fed_home, '-e', json.dumps({'status_n8n_urls': {DEPT: url}}))
    assert status.returncode == 0, status.stdout[-4000:]
    row = json.loads((fed_home / 'status.json').read_text())['departments'][0]
    assert (row['target'], row['health'], row['checks']['route']['ok']) == ('railway', 'healthy', None)

    mark = railway.mark()
    checked = run(ansible, 'deprovision.yml', railway, departments, fed_home, '--check')
    assert checked.returncode == 0, checked.stdout[-5000:]
    assert recap(checked.stdout)['changed'] > 0
    assert railway.mutations(mark) == [], 'check mode sends no mutation'
    assert railway.find_service(project['id'], SERVICE) is not None

    removed = run(ansible, 'deprovision.yml', railway, departments, fed_home)
    assert removed.returncode == 0, removed.stdout[-5000:]
    assert sorted(m['operation'] for m in railway.mutations(mark)) == ['serviceDelete', 'volumeDelete']
    assert railway.find_service(project['id'], SERVICE) is None and railway.volumes == {}
    assert railway.find_project(PROJECT) is not None, 'the project is left'
    assert railway.violations() == [] and railway.unsupported() == []
    assert query(db, 'SELECT state FROM federation_control.departments WHERE name = %s', (DEPT,)) == [('deleted',)]
    assert query(db, "SELECT count(*) FROM pg_roles WHERE rolname IN ('dept_field_ops', 'n8n_field_ops')") == [(0,)]
    backups = list((fed_home / 'backups' / DEPT).iterdir())
    assert len(backups) == 1
    assert sorted(f.name.split('-')[0] for f in backups[0].iterdir()) == ['department.json', 'n8n', 'secrets.yml', 'tenant']
    assert not (fed_home / 'secrets' / ('%s.yml' % DEPT)).exists()
    assert railway.token not in removed.stdout + removed.stderr

    mark = railway.mark()
    again = run(ansible, 'deprovision.yml', railway, departments, fed_home)
    assert again.returncode == 0 and recap(again.stdout)['changed'] == 0, again.stdout[-5000:]
    assert railway.mutations(mark) == []

    status = run(ansible, 'status.yml', railway, departments, fed_home)
    assert status.returncode == 0, status.stdout[-4000:]
    assert json.loads((fed_home / 'status.json').read_text())['departments'][0]['health'] == 'deleted'
