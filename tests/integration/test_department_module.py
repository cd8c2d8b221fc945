"""federation.platform.department against a real PostgreSQL 15."""

from tests.helpers import db_args, query as rows

MODULE = 'federation.platform.department'


def control_schema_exists(db):
    return rows(db, "SELECT count(*) FROM pg_namespace WHERE nspname = 'federation_control'")[0][0] == 1


def test_check_mode_registers_nothing(ansible, platform_db):
    result = ansible.module(MODULE, dict(db_args(platform_db), name='finance', state='provisioning'), check=True)
    assert result['changed'] is True
    assert result['department']['state'] == 'provisioning'
    assert not control_schema_exists(platform_db)


def test_lifecycle_with_history_and_idempotence(ansible, platform_db):
    args = db_args(platform_db)
    first = ansible.module(MODULE, dict(args, name='finance', spec={'tools': ['log_call']}), diff=True)
    assert first['changed'] is True
    assert first['previous_state'] is None
    assert first['department']['state'] == 'requested'
    assert first['diff']['before'] == {}
    assert any('INSERT INTO "federation_control".departments' in q for q in first['queries'])

    again = ansible.module(MODULE, dict(args, name='finance', spec={'tools': ['log_call']}))
    assert again['changed'] is False
    assert again['queries'] == []

    for target in ('provisioning', 'active'):
        moved = ansible.module(MODULE, dict(args, name='finance', state=target))
        assert moved['changed'] is True and moved['department']['state'] == target
    assert ansible.module(MODULE, dict(args, name='finance', state='active'))['changed'] is False

    query = ansible.module(MODULE, dict(args, name='finance', state='query'))
    assert [(h['from_state'], h['to_state']) for h in query['history']] == [
        (None, 'requested'), ('requested', 'provisioning'), ('provisioning', 'active')]
    record = query['department']
    assert record['created_at'] <= record['state_changed_at'] == record['updated_at']


def test_illegal_transition_names_both_states_and_changes_nothing(ansible, platform_db):
    args = db_args(platform_db)
    ansible.module(MODULE, dict(args, name='finance', state='provisioning'))
    before = rows(platform_db, 'SELECT state, updated_at FROM federation_control.departments')
    result = ansible.module(MODULE, dict(args, name='finance', state='deleted'))
    assert result['failed'] is True
    assert "Illegal state transition for department 'finance': provisioning -> deleted" in result['msg']
    assert rows(platform_db, 'SELECT state, updated_at FROM federation_control.departments') == before

    fresh = ansible.module(MODULE, dict(args, name='hr', state='active'))
    assert "'hr': (not registered) -> active" in fresh['msg']
    assert rows(platform_db, "SELECT count(*) FROM federation_control.departments WHERE name = 'hr'") == [(0,)]


def test_failure_records_the_error_and_a_rerun_resumes(ansible, platform_db):
    args = db_args(platform_db)
    ansible.module(MODULE, dict(args, name='finance', state='provisioning'))
    failed = ansible.module(MODULE, dict(args, name='finance', state='failed', error='n8n did not start'))
    assert failed['department']['last_error'] == 'n8n did not start'
    resumed = ansible.module(MODULE, dict(args, name='finance', state='provisioning'))
    assert resumed['department']['state'] == 'provisioning'
    assert resumed['department']['last_error'] is None


def test_deleted_department_can_be_requested_again(ansible, platform_db):
    args = db_args(platform_db)
    for target in ('provisioning', 'active', 'deprovisioning', 'deleted', 'present'):
        result = ansible.module(MODULE, dict(args, name='finance', state=target))
        assert not result.get('failed'), result
    assert result['department']['state'] == 'requested'


def test_bad_name_and_unreachable_server_fail_clearly(ansible, platform_db):
    bad = ansible.module(MODULE, dict(db_args(platform_db), name="x'; DROP SCHEMA public; --"))
    assert bad['failed'] and bad['msg'].startswith('Invalid department:')
    down = ansible.module(MODULE, dict(db_args(platform_db), login_port=1, name='finance'))
    assert down['failed']
    assert "Failed to connect to PostgreSQL %s:1" % platform_db['host'] in down['msg']
    assert platform_db['password'] not in str(down)


def test_info_reads_every_department_and_changes_nothing(ansible, platform_db):
    args = db_args(platform_db)
    info = 'federation.platform.department_info'
    empty = ansible.module(info, args)
    assert empty['changed'] is False and empty['departments'] == [] and empty['msg'] == '0 departments registered'
    assert not control_schema_exists(platform_db), 'reading an empty platform database creates nothing'

    ansible.module(MODULE, dict(args, name='hr', state='provisioning'))
    ansible.module(MODULE, dict(args, name='hr', state='failed', error='n8n did not start'))
    for target in ('provisioning', 'active', 'deprovisioning', 'deleted'):
        ansible.module(MODULE, dict(args, name='finance', state=target, spec={'target': 'vps'}))
    before = rows(platform_db, 'SELECT name, state, updated_at FROM federation_control.departments ORDER BY name')

    listed = ansible.module(info, args, check=True)
    assert listed['changed'] is False and listed['msg'] == '2 departments registered'
    assert [(d['name'], d['state'], d['last_error']) for d in listed['departments']] == [
        ('finance', 'deleted', None), ('hr', 'failed', 'n8n did not start')]
    finance = listed['departments'][0]
    assert finance['spec'] == {'target': 'vps'} and 'history' not in finance
    assert finance['created_at'] <= finance['state_changed_at']
    assert rows(platform_db, 'SELECT name, state, updated_at FROM federation_control.departments ORDER BY name') == before

    one = ansible.module(info, dict(args, name='finance', history=True))
    assert [d['name'] for d in one['departments']] == ['finance'] and one['msg'] == "department 'finance' is deleted"
    assert [(h['from_state'], h['to_state']) for h in one['departments'][0]['history']] == [
        (None, 'requested'), ('requested', 'provisioning'), ('provisioning', 'active'), ('active', 'deprovisioning'),
        ('deprovisioning', 'deleted')]
    assert ansible.module(info, dict(args, name='legal'))['departments'] == []
    bad = ansible.module(info, dict(args, name="x'; DROP SCHEMA public; --"))
    assert bad['failed'] and bad['msg'].startswith('Invalid department:')
