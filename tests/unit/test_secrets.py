import string

import pytest

from ansible_collections.federation.platform.plugins.module_utils._secrets import generate_secret, reconcile


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
