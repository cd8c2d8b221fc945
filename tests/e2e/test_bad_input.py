"""provision.yml refuses bad input before it touches anything (the whole run is in test_main_command.py)."""

import json
from concurrent.futures import ThreadPoolExecutor

from tests.helpers import query
from tests.hostile_names import HOSTILE_NAMES


def catalog(db):
    """Everything a run could have created: schemas, tables, roles, and the registry's rows."""
    snapshot = query(db, "SELECT nspname FROM pg_namespace ORDER BY 1")
    snapshot += query(db, "SELECT relname FROM pg_class WHERE relnamespace NOT IN "
                          "('pg_catalog'::regnamespace, 'information_schema'::regnamespace) ORDER BY 1")
    snapshot += query(db, "SELECT rolname FROM pg_roles ORDER BY 1")
    if query(db, "SELECT to_regclass('federation_control.departments')")[0][0]:
        snapshot += query(db, "SELECT name, state, spec::text, updated_at FROM federation_control.departments ORDER BY 1")
    return snapshot


def test_hostile_names_are_refused_before_anything_changes(ansible, platform_db, fed_home, tmp_path):
    before = catalog(platform_db)

    def attempt(index_name):
        index, name = index_name
        extra = tmp_path / ('vars-%d.json' % index)
        extra.write_text(json.dumps({'dept': name}))
        return name, ansible.playbook('provision.yml', '-e', '@%s' % extra)

    cases = list(enumerate(HOSTILE_NAMES + [['finance'], {'name': 'finance'}, 42, None, True]))
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(attempt, cases))

    for name, run in results:
        assert run.returncode != 0, 'accepted %r' % (name,)
        assert 'Invalid department: ' in run.stdout, (name, run.stdout[-2000:])
        assert 'A department name has 2-31 characters' in run.stdout
    assert len(results) >= 30
    assert catalog(platform_db) == before
    assert not (fed_home / 'secrets').exists()


def test_missing_dept_and_template_injection_on_the_command_line(ansible, platform_db, fed_home):
    before = catalog(platform_db)
    none = ansible.playbook('provision.yml')
    assert none.returncode != 0 and 'No department given: run the playbook with -e dept=<name>' in none.stdout
    templated = ansible.playbook('provision.yml', '-e', "dept={{ 'fin' ~ 'ance' }}")
    assert templated.returncode != 0 and 'contains a template expression' in templated.stdout
    assert catalog(platform_db) == before
    assert not (fed_home / 'secrets').exists()


def test_bad_spec_is_refused_with_department_field_and_fix(ansible, platform_db, fed_home, tmp_path):
    specs = tmp_path / 'departments'
    specs.mkdir()
    (specs / 'ops.yml').write_text('target: k8s\ntools: [log_call, teleport]\n')
    before = catalog(platform_db)
    run = ansible.playbook('provision.yml', '-e', 'dept=ops', '-e', 'federation_departments_dir=%s' % specs)
    assert run.returncode != 0
    assert "Invalid spec for department 'ops': field 'target' is 'k8s': use one of vps, railway" in run.stdout
    assert "unknown tool 'teleport'" in run.stdout
    assert catalog(platform_db) == before


def test_a_phone_line_without_a_telephony_token_or_with_a_bad_voice_section_is_refused(ansible, platform_db, fed_home,
                                                                                       tmp_path):
    specs = tmp_path / 'departments'
    specs.mkdir()
    (specs / 'ops.yml').write_text('voice: {mode: stream}\n')
    (specs / 'desk.yml').write_text('voice: {mode: fax, voicemail: true}\n')
    before = catalog(platform_db)
    run = ansible.playbook('provision.yml', '-e', 'dept=ops', '-e', 'federation_departments_dir=%s' % specs,
                           env={'FEDERATION_TWILIO_AUTH_TOKEN': ''})
    assert run.returncode != 0
    assert ("Department 'ops' has a voice section (field 'voice') but no telephony credential: set "
            "FEDERATION_TWILIO_AUTH_TOKEN") in run.stdout, run.stdout[-3000:]
    run = ansible.playbook('provision.yml', '-e', 'dept=desk', '-e', 'federation_departments_dir=%s' % specs)
    assert run.returncode != 0
    assert "Invalid spec for department 'desk': " in run.stdout
    assert "field 'voice.mode' is 'fax': use one of gather, relay, stream" in run.stdout
    assert "field 'voice' has unknown key 'voicemail'" in run.stdout
    assert catalog(platform_db) == before
    assert not (fed_home / 'secrets').exists()
