import pytest

from ansible_collections.federation.platform.plugins.module_utils._spec import SpecError, normalize_spec


def test_defaults_fill_a_missing_spec():
    spec = normalize_spec('field-ops', None, default_target='vps')
    assert spec == {
        'display_name': 'Field Ops', 'target': 'vps', 'tools': ['log_call'], 'callers': [],
        'rate_limit': {'requests': 60, 'per_seconds': 60}, 'resources': {'memory': '1g', 'cpus': 1.0},
        'oauth_clients': [],
        'assistant': 'deterministic', 'database': {'connections': 5, 'n8n_connections': 8}, 'knowledge': [],
    }


def test_partial_nested_values_merge_with_defaults():
    spec = normalize_spec('finance', {'rate_limit': {'requests': 5}, 'resources': {'cpus': 2},
                                      'database': {'connections': 12}})
    assert spec['rate_limit'] == {'requests': 5, 'per_seconds': 60}
    assert spec['resources'] == {'memory': '1g', 'cpus': 2}
    assert spec['database'] == {'connections': 12, 'n8n_connections': 8}


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
    ({'database': {'connections': 0}}, "field 'database.connections' must be a whole number of connections from 1 to 1000"),
    ({'database': {'n8n_connections': '8'}}, "field 'database.n8n_connections' must be a whole number"),
    ({'database': {'connections': True}}, "field 'database.connections' must be a whole number"),
    ({'database': {'connections': 1001}}, "field 'database.connections' must be a whole number"),
    ({'database': {'max': 3}}, "field 'database' must be a mapping with 'connections' and 'n8n_connections'"),
    ({'database': 5}, "field 'database' must be a mapping"),
    ({'assistant': ['llm']}, "field 'assistant' is ['llm']: use one of deterministic, llm"),
    ({'voice': {'mode': 'fax'}}, "field 'voice.mode' is 'fax': use one of gather, relay, stream"),
    ({'voice': {'mode': 'stream', 'language': 'en-GB'}}, "field 'voice.language' is 'en-GB': mode stream speaks en-US"),
    ({'voice': {'language': 'de-DE'}}, "field 'voice.language' is 'de-DE': mode gather speaks en-US, en-GB"),
    ({'voice': {'voicemail': True}}, "field 'voice' has unknown key 'voicemail'"),
    ({'voice': {'topics': ['pay; DROP TABLE']}}, "field 'voice.topics' must be a list of phrases"),
    ({'voice': {'transfer_to': ['finance']}}, "field 'voice.transfer_to' lists the department itself"),
    ({'voice': {'transfer_to': ['H R']}}, "field 'voice.transfer_to': department name 'H R' is not allowed"),
    ({'voice': {'public_url': 'ftp://x.example'}}, "field 'voice.public_url' must be an http(s) address"),
    ({'voice': {'public_url': 'https://x.example/a?b=c'}}, "field 'voice.public_url' must be an http(s) address"),
    ({'voice': {'max_calls': 0}}, "field 'voice.max_calls' must be a whole number from 1 to 16"),
    ({'voice': {'greeting': 'two\nlines'}}, "field 'voice.greeting' must be one line"),
    ({'voice': {'resources': {'memory': 'lots'}}}, "field 'voice.resources.memory' must look like 512m or 2g"),
    ({'voice': 'yes'}, "field 'voice' must be a mapping"),
    ({'target': 'railway', 'voice': {}}, "target railway has none yet"),
    ({'knowledge': {'hours': 'nine to five'}}, "field 'knowledge' must be a list of {topic, answer}"),
    ({'knowledge': [{'topic': 'hours'}]}, "field 'knowledge' must be a list of {topic, answer}"),
    ({'knowledge': [{'topic': 'hours; --', 'answer': 'x'}]}, "field 'knowledge': topic 'hours; --' must be a phrase"),
    ({'knowledge': [{'topic': 'hours', 'answer': ' '}]}, "field 'knowledge': the answer of topic 'hours' must be text"),
    ({'knowledge': [{'topic': 'Hours', 'answer': 'a'}, {'topic': 'hours', 'answer': 'b'}]},
     "field 'knowledge' lists topic 'hours' twice"),
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


def test_oauth_clients_get_their_defaults():
    import datetime
    spec = normalize_spec('finance', {'oauth_clients': [
        {'name': 'crm', 'scopes': ['calls:read']},
        {'name': 'drive', 'provider': 'google_service_account', 'subject': 'bot@example.com', 'max_age_days': 90},
        {'name': 'calendar', 'provider': 'google_oauth', 'expires_at': datetime.date(2030, 1, 31)},
    ]})
    crm, drive, calendar = spec['oauth_clients']
    assert crm == {'name': 'crm', 'provider': 'oidc', 'scopes': ['calls:read'], 'grant_types': ['client_credentials'],
                   'subject': None, 'max_age_days': None, 'expires_at': None}
    assert drive['grant_types'] == [] and drive['subject'] == 'bot@example.com' and drive['max_age_days'] == 90
    assert calendar['expires_at'] == '2030-01-31'  # YAML dates become text the registry can store as JSON
    assert normalize_spec('finance', {'oauth_clients': None})['oauth_clients'] == []


@pytest.mark.parametrize('clients, fragment', [
    ('crm', "field 'oauth_clients' must be a list"),
    (['crm'], "field 'oauth_clients[0]' must be a mapping"),
    ([{'scopes': []}], "field 'oauth_clients[0]'.name must be 1-40 lowercase letters"),
    ([{'name': 'CRM'}], "got 'CRM'"),
    ([{'name': 'crm'}, {'name': 'crm'}], "lists client 'crm' twice"),
    ([{'name': 'crm', 'scope': 'x'}], "has unknown key 'scope'"),
    ([{'name': 'crm', 'provider': 'okta'}], "provider 'okta' is unknown: use one of oidc, google_service_account"),
    ([{'name': 'crm', 'scopes': ['a b']}], 'scopes must be a list of scope names without spaces'),
    ([{'name': 'crm', 'scopes': ['a', 'a']}], 'scopes lists a scope twice'),
    ([{'name': 'crm', 'grant_types': ['password']}], 'grant_types must be a non-empty list of client_credentials'),
    ([{'name': 'crm', 'grant_types': []}], 'grant_types must be a non-empty list'),
    ([{'name': 'g', 'provider': 'google_oauth', 'grant_types': ['client_credentials']}],
     "client 'g': grant_types applies to provider oidc only"),
    ([{'name': 'crm', 'subject': 'a@b.com'}], 'subject applies to provider google_service_account only'),
    ([{'name': 'sa', 'provider': 'google_service_account', 'subject': 'nobody'}], 'subject must be the e-mail address'),
    ([{'name': 'sa', 'provider': 'google_service_account', 'max_age_days': 0}], 'max_age_days must be a whole number'),
    ([{'name': 'crm', 'max_age_days': 30}], 'max_age_days applies to provider google_service_account only'),
    ([{'name': 'crm', 'expires_at': 'next week'}], 'expires_at must be a date such as 2030-01-31'),
])
def test_bad_oauth_clients_are_named_with_the_fix(clients, fragment):
    with pytest.raises(SpecError) as exc:
        normalize_spec('finance', {'oauth_clients': clients})
    assert str(exc.value).startswith("Invalid spec for department 'finance': ")
    assert fragment in str(exc.value)


def test_the_llm_assistant_is_accepted():
    assert normalize_spec('finance', {'assistant': 'llm'})['assistant'] == 'llm'


def test_a_voice_section_gets_its_defaults_and_no_section_means_no_phone_line():
    assert 'voice' not in normalize_spec('finance', {})
    assert 'voice' not in normalize_spec('finance', {'voice': None})
    voice = normalize_spec('finance', {'voice': {'mode': 'stream', 'topics': ['opening hours'], 'transfer_to': ['hr'],
                                                 'public_url': 'https://voice.example.org/finance/'}})['voice']
    assert voice == {'mode': 'stream', 'language': 'en-US', 'greeting': None, 'topics': ['opening hours'],
                     'transfer_to': ['hr'], 'public_url': 'https://voice.example.org/finance', 'max_calls': 2,
                     'resources': {'memory': '384m', 'cpus': 1.0}}
