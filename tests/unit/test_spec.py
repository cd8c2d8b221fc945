import pytest

from ansible_collections.federation.platform.plugins.module_utils._spec import SpecError, normalize_spec


def test_defaults_fill_a_missing_spec():
    spec = normalize_spec('field-ops', None, default_target='vps')
    assert spec == {
        'display_name': 'Field Ops', 'target': 'vps', 'tools': ['log_call'], 'callers': [],
        'rate_limit': {'requests': 60, 'per_seconds': 60}, 'resources': {'memory': '1g', 'cpus': 1.0},
        'assistant': 'deterministic',
    }


def test_partial_nested_values_merge_with_defaults():
    spec = normalize_spec('finance', {'rate_limit': {'requests': 5}, 'resources': {'cpus': 2}})
    assert spec['rate_limit'] == {'requests': 5, 'per_seconds': 60}
    assert spec['resources'] == {'memory': '1g', 'cpus': 2}


@pytest.mark.parametrize('raw, fragment', [
    ({'taget': 'vps'}, "unknown field 'taget'"),
    ({'target': 'k8s'}, "field 'target' is 'k8s': use one of vps, railway"),
    ({'tools': ['log_call', 'rm_rf']}, "unknown tool 'rm_rf'"),
    ({'tools': 'log_call'}, "field 'tools' must be a list"),
    ({'tools': ['log_call', 'log_call']}, 'lists a tool twice'),
    ({'callers': ['HR']}, "field 'callers': department name 'HR' is not allowed"),
    ({'callers': ['finance']}, 'lists the department itself'),
    ({'rate_limit': {'requests': 0}}, "'rate_limit.requests' must be a whole number"),
    ({'rate_limit': {'requests': True}}, "'rate_limit.requests' must be a whole number"),
    ({'rate_limit': {'burst': 3}}, "'rate_limit' must be a mapping"),
    ({'resources': {'memory': '1TB'}}, "'resources.memory' must look like 512m or 2g"),
    ({'resources': {'cpus': -1}}, "'resources.cpus' must be a number above 0"),
    ({'name': 'hr'}, "field 'name' is 'hr' but the department is 'finance'"),
    ({'display_name': 'x' * 65}, "'display_name' must be text"),
    ({'assistant': 'gpt'}, "field 'assistant' is 'gpt': use one of deterministic, llm"),
    ({'assistant': ['llm']}, "field 'assistant' is ['llm']: use one of deterministic, llm"),
])
def test_bad_fields_are_named_with_the_fix(raw, fragment):
    with pytest.raises(SpecError) as exc:
        normalize_spec('finance', raw)
    message = str(exc.value)
    assert message.startswith("Invalid spec for department 'finance': ")
    assert fragment in message


def test_every_problem_is_reported_at_once():
    with pytest.raises(SpecError) as exc:
        normalize_spec('finance', {'target': 'k8s', 'tools': ['nope'], 'colour': 'red'})
    assert len(exc.value.problems) == 3


def test_a_spec_that_is_not_a_mapping():
    with pytest.raises(SpecError, match='must be a mapping of fields, got list'):
        normalize_spec('finance', ['target', 'vps'])


def test_the_llm_assistant_is_accepted():
    assert normalize_spec('finance', {'assistant': 'llm'})['assistant'] == 'llm'
