"""ansible-playbook provision.yml -e dept=... end to end, against a real PostgreSQL 15."""

import json
import stat
from concurrent.futures import ThreadPoolExecutor

import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

from tests.helpers import query, recap
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


def decrypt(home, path):
    password = (home / 'vault-password').read_text().strip()
    vault = VaultLib([('default', VaultSecret(password.encode()))])
    return yaml.safe_load(vault.decrypt(path.read_bytes()))


def test_provision_converges_and_reruns_without_change(ansible, platform_db, fed_home):
    first = ansible.playbook('provision.yml', '-e', 'dept=finance')
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr
    assert recap(first.stdout)['changed'] > 0
    # progress: each task is shown with its timing
    assert 'TASKS RECAP' in first.stdout

    state = query(platform_db, "SELECT state, spec FROM federation_control.departments WHERE name = 'finance'")
    assert state[0][0] == 'active'
    assert state[0][1]['tools'] == ['log_call', 'ask_department']  # from departments/finance.yml

    secrets_file = fed_home / 'secrets' / 'finance.yml'
    assert secrets_file.read_bytes().startswith(b'$ANSIBLE_VAULT;1.1;AES256')
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(secrets_file.parent.stat().st_mode) == 0o700
    stored = decrypt(fed_home, secrets_file)
    assert stored['department'] == 'finance'
    assert set(stored['secrets']) >= {'tenant_db_password', 'n8n_db_password', 'n8n_encryption_key', 'n8n_owner_password'}

    second = ansible.playbook('provision.yml', '-e', 'dept=finance')
    assert second.returncode == 0, second.stdout[-4000:]
    assert recap(second.stdout)['changed'] == 0
    assert decrypt(fed_home, secrets_file) == stored, 'a re-run must never rotate a secret'

    before = catalog(platform_db)
    checked = ansible.playbook('provision.yml', '-e', 'dept=finance', '--check', '--diff')
    assert checked.returncode == 0, checked.stdout[-4000:]
    assert recap(checked.stdout)['changed'] == 0
    assert catalog(platform_db) == before


def test_check_mode_on_a_new_department_predicts_change_and_writes_nothing(ansible, platform_db, fed_home):
    before = catalog(platform_db)
    run = ansible.playbook('provision.yml', '-e', 'dept=hr', '--check')
    assert run.returncode == 0, run.stdout[-4000:]
    assert recap(run.stdout)['changed'] > 0
    assert catalog(platform_db) == before
    assert not (fed_home / 'secrets' / 'hr.yml').exists()


def test_no_secret_appears_in_verbose_output(ansible, platform_db, fed_home):
    outputs = []
    for attempt in range(2):  # the run that generates the secrets and the run that reads them
        run = ansible.playbook('provision.yml', '-e', 'dept=legal', '-vvv')
        assert run.returncode == 0, run.stdout[-4000:]
        outputs.append(run.stdout + run.stderr)
    secrets = decrypt(fed_home, fed_home / 'secrets' / 'legal.yml')['secrets']
    assert len(secrets) >= 4
    for output in outputs:
        for name, value in secrets.items():
            assert value not in output, 'secret %s printed' % name
        assert platform_db['password'] not in output
        assert (fed_home / 'vault-password').read_text().strip() not in output


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
