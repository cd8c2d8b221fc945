"""Who gets through the gateway: each allowed and refused case against the real HAProxy the role runs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import pwd
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.harness.common import wait_for
from tests.harness.haproxy import cli, show_proc


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


def public_pem(gateway) -> bytes:
    return (gateway.folder / 'gateway-public.pem').read_bytes()


def refused(gateway, response, status, error, backend='finance', before=None):
    """The gateway answered ``status`` with ``error`` and the request never reached the backend."""
    assert response.status_code == status, response.text
    assert error in response.json()['error']
    if before is not None:
        assert len(gateway.backends[backend].requests) == before


def test_allowed_call_reaches_the_target_with_the_caller_and_without_the_token(gateway):
    before = len(gateway.backends['finance'].requests)
    answer = gateway.call('/dept/finance/travel-budget?quarter=3', gateway.token('hr'), method='POST',
                          json={'question': 'What is the Q3 travel budget?'},
                          headers={'X-Federation-Caller': 'finance'})  # a forged caller header is replaced
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    assert seen['department'] == 'finance'
    assert seen['path'] == '/webhook/travel-budget?quarter=3'
    assert seen['callers'] == ['hr']
    assert seen['authorization'] is None
    assert json.loads(seen['body']) == {'question': 'What is the Q3 travel budget?'}
    assert len(gateway.backends['finance'].requests) == before + 1
    # and the other way round, to the other department's backend
    back = gateway.call('/dept/hr/headcount', gateway.token('finance'))
    assert back.status_code == 200 and back.json()['department'] == 'hr' and back.json()['caller'] == 'finance'


def test_missing_token_is_refused(gateway):
    before = len(gateway.backends['finance'].requests)
    answer = gateway.call('/dept/finance/travel-budget')
    refused(gateway, answer, 401, 'missing bearer token', before=before)
    assert answer.headers['WWW-Authenticate'].startswith('Bearer')


def test_expired_token_is_refused(gateway):
    before = len(gateway.backends['finance'].requests)
    token = gateway.mint(sub='hr', exp=int(time.time()) - 5)
    refused(gateway, gateway.call('/dept/finance/x', token), 401, 'token expired', before=before)


def test_token_without_expiry_is_refused(gateway):
    token = gateway.mint(sub='hr', exp=None)
    refused(gateway, gateway.call('/dept/finance/x', token), 401, 'token has no expiry')


# Registered claims with another type than RFC 7519 gives them (4.1): signed by the platform key, refused all the same.
NOW = int(time.time())
MALFORMED_CLAIMS = {
    'exp as a string': (dict(exp=str(NOW + 600)), 'claim exp is not a NumericDate'),
    'exp as a float in a string': (dict(exp='%d.5' % (NOW + 600)), 'claim exp is not a NumericDate'),
    'exp as an array': (dict(exp=[NOW + 600]), 'claim exp is not a NumericDate'),
    'exp as a boolean': (dict(exp=True), 'claim exp is not a NumericDate'),
    'nbf as a string': (dict(nbf=str(NOW - 60)), 'claim nbf is not a NumericDate'),
    'nbf in the future': (dict(nbf=NOW + 300), 'token not valid yet (nbf)'),
    'iat as a string': (dict(iat=str(NOW)), 'claim iat is not a NumericDate'),
    'iat as null': (dict(iat='null'), 'claim iat is not a NumericDate'),
    'iss not a string': (dict(iss=['federation-gateway']), 'claim iss is not a string'),
    'sub not a string': (dict(sub=['hr']), 'claim sub is not a string'),
    'sub a number': (dict(sub=7), 'claim sub is not a string'),
    'jti not a string': (dict(jti={'id': 1}), 'claim jti is not a string'),
    'aud a number': (dict(aud=5), 'claim aud is not a string or an array of strings'),
    'aud an array with a number': (dict(aud=['federation', 5]), 'claim aud is not a string or an array of strings'),
    'aud when the gateway asks for none': (dict(aud='federation'), 'audience not accepted: this gateway asks for none'),
}


@pytest.mark.parametrize('case', sorted(MALFORMED_CLAIMS))
def test_token_whose_registered_claims_have_the_wrong_type_is_refused(gateway, case):
    claims, error = MALFORMED_CLAIMS[case]
    claims = {k: (None if v == 'null' else v) for k, v in dict({'sub': 'hr'}, **claims).items()}
    body = dict({'iss': 'federation-gateway', 'exp': NOW + 600}, **claims)
    # PyJWT would refuse to encode some of these: sign the JSON text directly.
    token = jwt.api_jws.encode(json.dumps(body).encode(), gateway.signing_key(), algorithm='ES256')
    before = len(gateway.backends['finance'].requests)
    answer = gateway.call('/dept/finance/x', token)
    refused(gateway, answer, 401, error, before=before)
    assert 'invalid_token' in answer.headers['WWW-Authenticate']


def test_token_with_a_claim_twice_is_refused(gateway):
    # HAProxy's own JSON query reads the first sub, another reader the last one: neither may decide.
    payload = '{"iss":"federation-gateway","exp":%d,"sub":"audit","sub":"hr"}' % (NOW + 600)
    token = jwt.api_jws.encode(payload.encode(), gateway.signing_key(), algorithm='ES256')
    refused(gateway, gateway.call('/dept/finance/x', token), 401, 'a claim appears twice')


def test_well_typed_optional_claims_and_a_past_nbf_are_accepted(gateway):
    # A NumericDate may carry a fraction; nbf in the past, iat and jti of the right types pass.
    token = gateway.mint(sub='hr', exp=NOW + 600.5, nbf=int(time.time()) - 1, iat=NOW, jti='a1b2')
    answer = gateway.call('/dept/finance/x', token)
    assert answer.status_code == 200, answer.text
    assert answer.json()['caller'] == 'hr'


def test_wrong_issuer_is_refused(gateway):
    before = len(gateway.backends['finance'].requests)
    token = gateway.mint(sub='hr', iss='someone-else')
    refused(gateway, gateway.call('/dept/finance/x', token), 401, 'issuer not accepted', before=before)


def test_altered_payload_is_refused(gateway):
    header, payload, signature = gateway.token('audit').split('.')
    claims = json.loads(base64.urlsafe_b64decode(payload + '=' * (-len(payload) % 4)))
    claims['sub'] = 'hr'  # audit poses as hr, who may call finance without audit's limit
    forged = '.'.join([header, b64(json.dumps(claims).encode()), signature])
    refused(gateway, gateway.call('/dept/finance/x', forged), 401, 'signature not valid')


def test_token_signed_with_another_key_is_refused(gateway):
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    token = gateway.mint(key=other, sub='hr')
    refused(gateway, gateway.call('/dept/finance/x', token), 401, 'signature not valid')


def test_alg_none_is_refused(gateway):
    claims = {'iss': 'federation-gateway', 'sub': 'hr', 'exp': int(time.time()) + 600}
    token = '%s.%s.' % (b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode()), b64(json.dumps(claims).encode()))
    refused(gateway, gateway.call('/dept/finance/x', token), 401, 'algorithm not accepted')


def test_hs256_signed_with_the_public_key_is_refused(gateway):
    claims = {'iss': 'federation-gateway', 'sub': 'hr', 'exp': int(time.time()) + 600}
    signing_input = '%s.%s' % (b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode()), b64(json.dumps(claims).encode()))
    mac = hmac.new(public_pem(gateway), signing_input.encode(), hashlib.sha256).digest()
    refused(gateway, gateway.call('/dept/finance/x', signing_input + '.' + b64(mac)), 401, 'algorithm not accepted')


def test_token_of_a_department_the_gateway_does_not_know_is_refused(gateway):
    token = gateway.mint(sub='ghost')  # signed by the platform key, but no such department is routed
    refused(gateway, gateway.call('/dept/finance/x', token), 401, 'not a department of this gateway')


def test_caller_off_the_allow_list_is_refused(gateway):
    before = len(gateway.backends['hr'].requests)
    answer = gateway.call('/dept/hr/salaries', gateway.token('audit'))  # hr lets only finance call it
    refused(gateway, answer, 403, 'may not ask this department', backend='hr', before=before)
    assert answer.json()['caller'] == 'audit' and answer.json()['department'] == 'hr'


def test_unknown_department_is_refused(gateway):
    answer = gateway.call('/dept/marketing/x', gateway.token('hr'))
    refused(gateway, answer, 404, 'unknown department')
    assert answer.json()['department'] == 'marketing'


def test_paths_outside_dept_and_dot_segments_are_refused(gateway):
    token = gateway.token('hr')
    assert gateway.call('/rest/settings', token).status_code == 404
    for path in ('/dept/finance/../../rest/login', '/dept/finance/./x', '/dept/finance/%2e%2e/rest', '/dept/finance/a%2Fb'):
        # sent as written: an HTTP library would resolve the dot segments itself
        conn = http.client.HTTPConnection('127.0.0.1', gateway.port, timeout=15)
        conn.request('GET', path, headers={'Authorization': 'Bearer ' + token})
        answer = conn.getresponse()
        assert answer.status == 400, (path, answer.read())
        conn.close()


def test_over_the_rate_limit_is_refused_and_counters_survive_a_reload(gateway):
    token = gateway.token('audit')  # audit may make 3 calls a minute
    before = len(gateway.backends['finance'].requests)
    statuses = [gateway.call('/dept/finance/ledger', token).status_code for dummy in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert len(gateway.backends['finance'].requests) == before + 3
    answer = gateway.call('/dept/finance/ledger', token)
    assert answer.status_code == 429
    assert answer.json() == {'error': 'rate limit exceeded', 'caller': 'audit', 'limit': 3, 'per_seconds': 60}
    assert answer.headers['Retry-After'] == '60'
    # another caller is not slowed down by audit's limit
    assert gateway.call('/dept/finance/ledger', gateway.token('hr')).status_code == 200

    workers = show_proc(gateway.master_socket)['workers']
    # The files the role watches, so that the role's next run finds the gateway up to date.
    reloaded = gateway.ansible.module('federation.platform.gateway_service', dict(
        state='reloaded', config_files=[str(gateway.folder / 'haproxy.cfg'), str(gateway.folder / 'departments.cfg')],
        watch_files=[str(gateway.folder / 'gateway-public.pem'), str(gateway.folder / 'claims.lua')], pidfile=str(gateway.pidfile),
        master_socket=str(gateway.master_socket)))
    assert reloaded['operation'] == 'reloaded' and not set(reloaded['workers']) & set(workers), reloaded
    # The old worker hands its tables to the new one through the local peer, a moment after the new one starts.
    table = wait_for(lambda: 'key=audit' in cli(gateway.master_socket, '@1 show table federation_rl_60s'), 10,
                     'the rate counters in the new worker')
    assert table
    assert gateway.call('/dept/finance/ledger', token).status_code == 429, 'the counters must survive a reload'


def test_workers_drop_root(gateway):
    workers = show_proc(gateway.master_socket)['workers']
    assert workers
    for pid in workers:
        uid = os.stat('/proc/%d' % pid).st_uid
        expected = pwd.getpwnam('haproxy').pw_uid if os.geteuid() == 0 else os.geteuid()
        assert uid == expected
