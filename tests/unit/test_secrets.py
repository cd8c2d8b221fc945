import string

import pytest

from ansible_collections.federation.platform.plugins.module_utils._secrets import generate_secret, reconcile
from ansible_collections.federation.platform.plugins.plugin_utils._secret_store import published


def test_generated_secrets_have_every_class_and_only_safe_characters():
    for dummy in range(200):
        value = generate_secret(8)
        assert len(value) == 8
        assert set(value) <= set(string.ascii_letters + string.digits)
        assert any(c.isupper() for c in value) and any(c.islower() for c in value) and any(c.isdigit() for c in value)


def test_short_secrets_are_refused():
    with pytest.raises(ValueError):
        generate_secret(7)


def test_existing_secrets_are_kept_and_missing_ones_generated():
    new, generated, updated = reconcile({'a': 'keep-me'}, {'a': 32, 'b': 16}, {}, set())
    assert new['a'] == 'keep-me'
    assert len(new['b']) == 16
    assert generated == ['b'] and updated == []


def test_rotation_replaces_only_what_is_named():
    new, generated, updated = reconcile({'a': 'old-a', 'b': 'old-b'}, {'a': 32, 'b': 32}, {}, {'b'})
    assert new['a'] == 'old-a' and new['b'] != 'old-b'
    assert generated == ['b']


def test_given_values_are_stored_once():
    new, generated, updated = reconcile({'k': 'v1'}, {}, {'k': 'v2', 'skip': None}, set())
    assert new == {'k': 'v2'} and updated == ['k']
    again = reconcile(new, {}, {'k': 'v2'}, set())
    assert again[2] == []


def test_check_mode_keeps_what_earlier_tasks_of_the_run_generated():
    stored = {'tenant_db_password': 'old', 'gateway_token': 'token-1'}
    earlier = {'tenant_db_password': 'rotated-in-memory', 'gateway_token': 'token-1'}
    task_vars = {'federation_secrets': earlier, 'federation_dept': 'finance'}
    # A later task read the store (still the old password, nothing is saved in check mode): the rotated
    # value from earlier in the run stays, and what the task itself minted goes over the fact.
    assert published(task_vars, 'federation_secrets', 'finance', dict(stored), True) == earlier
    minted = dict(stored, gateway_token='token-2')
    assert published(task_vars, 'federation_secrets', 'finance', minted, True, own=['gateway_token']) == \
        {'tenant_db_password': 'rotated-in-memory', 'gateway_token': 'token-2'}
    # Another department's fact is never mixed in; a real run publishes what the store holds.
    assert published(dict(task_vars, federation_dept='hr'), 'federation_secrets', 'finance', stored, True) == stored
    assert published(task_vars, 'federation_secrets', 'finance', stored, False) == stored
