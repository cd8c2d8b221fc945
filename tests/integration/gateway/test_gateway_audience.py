"""A gateway that requires an audience: tokens are minted with it, and a token without it is refused."""

from __future__ import annotations

import jwt

from tests.harness.haproxy import stop_pidfile
from tests.integration.gateway.conftest import _set_up


def test_audience_is_minted_and_required(tmp_path_factory):
    gateway = _set_up(tmp_path_factory, ['finance', 'hr'])
    try:
        for dept in ('finance', 'hr'):
            gateway.route(dept, api_gateway_audience='assistants', api_gateway_key_type='rsa_2048')
        token = gateway.token('hr')
        assert jwt.get_unverified_header(token)['alg'] == 'RS256'
        assert jwt.decode(token, options={'verify_signature': False})['aud'] == 'assistants'
        key = gateway.signing_key()
        answer = gateway.call('/dept/finance/x', token)
        assert answer.status_code == 200 and answer.json()['caller'] == 'hr'
        no_audience = gateway.mint(key=key, algorithm='RS256', sub='hr')
        refused = gateway.call('/dept/finance/x', no_audience)
        assert refused.status_code == 401 and 'audience' in refused.json()['error']
        other = gateway.mint(key=key, algorithm='RS256', sub='hr', aud='someone-else')
        assert gateway.call('/dept/finance/x', other).status_code == 401
        complete = gateway.mint(key=key, algorithm='RS256', sub='hr', aud='assistants')
        assert gateway.call('/dept/finance/x', complete).status_code == 200
    finally:
        stop_pidfile(gateway.pidfile)
        for server in gateway.backends.values():
            server.stop()
