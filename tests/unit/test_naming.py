import pytest

from ansible_collections.federation.platform.plugins.module_utils import _naming
from tests.hostile_names import HOSTILE_NAMES


@pytest.mark.parametrize('name', ['finance', 'hr', 'field-ops', 'a1', 'r2-d2', 'a' * 31, 'x9'])
def test_valid_names_pass(name):
    assert _naming.department_name_error(name) is None
    assert _naming.validate_department_name(name) == name


@pytest.mark.parametrize('name', HOSTILE_NAMES + [None, 42, ['finance'], {'a': 1}, True])
def test_hostile_names_are_refused_with_the_rule(name):
    error = _naming.department_name_error(name)
    assert error
    with pytest.raises(ValueError) as exc:
        _naming.validate_department_name(name)
    assert 'lowercase ASCII letters' in str(exc.value)


def test_words_that_yaml_would_read_as_null_are_still_names():
    # 'null' and '~' arrive as strings from -e dept=...; 'null' is a valid name, '~' is not.
    assert _naming.department_name_error('null') is None
    assert _naming.department_name_error('~')


def test_at_least_thirty_hostile_names():
    assert len(HOSTILE_NAMES) >= 30


def test_messages_show_invisible_characters():
    assert "'finance\\u200b'" in _naming.department_name_error('finance\u200b')
    assert "'finance\\n'" in _naming.department_name_error('finance\n')


def test_derived_names():
    assert _naming.tenant_schema('field-ops') == 'dept_field_ops'
    assert _naming.tenant_role('finance') == 'dept_finance'
    assert _naming.n8n_database('field-ops') == 'n8n_field_ops'
    with pytest.raises(ValueError):
        _naming.tenant_schema('Bad')
