"""Credential data checks (the schema subset n8n generates) and keyed fingerprints."""

from ansible_collections.federation.platform.plugins.module_utils._n8n_credentials import schema_problems
from ansible_collections.federation.platform.plugins.module_utils._n8n_state import fingerprint

# GET /credentials/schema/postgres on n8n 1.123.81, shortened.
POSTGRES_1X = {
    'additionalProperties': False, 'type': 'object', 'required': [],
    'properties': {'host': {'type': 'string'}, 'database': {'type': 'string'}, 'user': {'type': 'string'},
                   'password': {'type': 'string'}, 'allowUnauthorizedCerts': {'type': 'boolean'},
                   'ssl': {'type': 'string', 'enum': ['allow', 'disable', 'require']}, 'port': {'type': 'number'},
                   'sshTunnel': {'type': 'boolean'}, 'sshHost': {'type': 'string'}},
    'allOf': [
        {'if': {'properties': {'allowUnauthorizedCerts': {'enum': [False]}}},
         'then': {'allOf': [{'required': ['ssl']}]}, 'else': {'allOf': [{'not': {'required': ['ssl']}}]}},
        {'if': {'properties': {'sshTunnel': {'enum': [True]}}},
         'then': {'allOf': [{'required': ['sshHost']}]}, 'else': {'allOf': [{'not': {'required': ['sshHost']}}]}},
    ],
}


def good():
    return {'host': 'db', 'port': 5432, 'database': 'federation', 'user': 'dept_x', 'password': 'p',
            'ssl': 'disable', 'sshTunnel': False}


def test_good_postgres_data_passes():
    data, problems = schema_problems(POSTGRES_1X, good())
    assert problems == [] and data == good()


def test_numbers_and_booleans_given_as_text_are_converted():
    raw = dict(good(), port='6543', sshTunnel='false')
    data, problems = schema_problems(POSTGRES_1X, raw)
    assert problems == []
    assert data['port'] == 6543 and data['sshTunnel'] is False
    assert raw['port'] == '6543'      # the input is left alone


def test_every_problem_names_the_property_never_its_value():
    raw = {'host': 'db', 'port': 'lots', 'ssl': 'sometimes', 'colour': 'Hunter2-secret'}
    data, problems = schema_problems(POSTGRES_1X, raw)
    assert problems == [
        'data.ssl must be one of allow, disable, require',
        'data.port must be a number',
        'data has unknown property colour (known: allowUnauthorizedCerts, database, host, password, port, sshHost, '
        'sshTunnel, ssl, user)',
        'data needs property sshHost',
    ]
    assert not any('Hunter2' in p or 'lots' in p or 'sometimes' in p for p in problems)


def test_conditional_requirements_follow_json_schema_if_semantics():
    # sshTunnel absent: "if" holds vacuously, so its "then" applies (n8n 1.x really asks for the ssh fields)
    data, problems = schema_problems(POSTGRES_1X, {k: v for k, v in good().items() if k != 'sshTunnel'})
    assert problems == ['data needs property sshHost']
    data, problems = schema_problems(POSTGRES_1X, dict(good(), sshTunnel=False, sshHost='x'))
    assert problems == ['data must not have property sshHost here']
    data, problems = schema_problems(POSTGRES_1X, dict(good(), allowUnauthorizedCerts=True))
    assert problems == ['data must not have property ssl here']


def test_fingerprints_are_keyed_and_reveal_nothing():
    one = fingerprint('key-1', 'postgres', good())
    assert one == fingerprint('key-1', 'postgres', dict(reversed(list(good().items()))))  # order does not matter
    assert one.startswith('v1:') and len(one) == 3 + 64
    assert one != fingerprint('key-2', 'postgres', good())
    assert one != fingerprint('key-1', 'httpHeaderAuth', good())
    assert one != fingerprint('key-1', 'postgres', dict(good(), password='q'))
    assert 'dept_x' not in one and 'federation' not in one
