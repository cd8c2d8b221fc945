"""Gateways set up differently from the suite's: one that requires an audience (RS256 keys), one under systemd,
one whose secrets live in HashiCorp Vault."""

from __future__ import annotations

import jwt

from ansible_collections.federation.platform.plugins.module_utils._secrets import HashiVaultKV2Store, Snapshot
from tests.harness.haproxy import show_proc, stop_pidfile
from tests.harness.systemd import FakeSystemd
from tests.harness.vault_fake import VaultFake
from tests.helpers import recap
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
        # aud may also be an array of strings (RFC 7519, 4.1.3): one of them must be the gateway's audience.
        among = gateway.mint(key=key, algorithm='RS256', sub='hr', aud=['reports', 'assistants'])
        assert gateway.call('/dept/finance/x', among).status_code == 200
        elsewhere = gateway.mint(key=key, algorithm='RS256', sub='hr', aud=['reports', 'billing'])
        refused = gateway.call('/dept/finance/x', elsewhere)
        assert refused.status_code == 401 and refused.json()['error'] == 'token audience not accepted'
    finally:
        stop_pidfile(gateway.pidfile)
        for server in gateway.backends.values():
            server.stop()


def test_the_role_runs_the_gateway_under_systemd_when_asked(tmp_path_factory):
    gateway = _set_up(tmp_path_factory, ['finance', 'hr'])
    systemd = FakeSystemd(gateway.folder.parent / 'systemd')
    more = dict(api_gateway_service_manager='systemd', api_gateway_systemd_unit='federation-gateway-test',
                api_gateway_systemd_dir=str(systemd.units))
    try:
        for dept in ('finance', 'hr'):
            gateway.route(dept, env=systemd.env(), **more)
        systemd.verify('federation-gateway-test')
        pid = systemd.state['pids']['federation-gateway-test']
        assert show_proc(gateway.master_socket)['master'] == pid  # systemd's process is the master, reloaded in place
        answer = gateway.call('/dept/finance/x', gateway.token('hr'))
        assert answer.status_code == 200 and answer.json()['caller'] == 'hr'
        again = gateway.route('hr', env=systemd.env(), **more)
        assert recap(again.stdout)['changed'] == 0
    finally:
        systemd.stop_all()
        stop_pidfile(gateway.pidfile)
        for server in gateway.backends.values():
            server.stop()


def test_the_role_keeps_key_and_tokens_in_vault_with_the_hashi_vault_backend(tmp_path_factory):
    gateway = _set_up(tmp_path_factory, ['finance', 'hr'])
    vault = VaultFake().start()
    more = dict(federation_secrets_backend='hashi_vault',
                federation_hashi_vault={'url': vault.url, 'token': vault.root_token})
    try:
        # hr already has secrets (the secrets role ran): the token joins them.
        HashiVaultKV2Store('hr', vault.url, vault.root_token).save(Snapshot(), {'tenant_db_password': 'kept-as-it-is'}, {})
        for dept in ('finance', 'hr'):
            gateway.route(dept, **more)
        assert not (gateway.home / 'secrets').exists()          # nothing of either on disk
        key = vault.read('secret', 'federation/_platform/gateway')['gateway_signing_key']
        hr = vault.read('secret', 'federation/hr')
        assert hr['tenant_db_password'] == 'kept-as-it-is' and sorted(hr) == ['gateway_token', 'tenant_db_password']
        assert jwt.decode(hr['gateway_token'], options={'verify_signature': False})['sub'] == 'hr'
        answer = gateway.call('/dept/finance/x', hr['gateway_token'])
        assert answer.status_code == 200 and answer.json()['caller'] == 'hr'
        assert gateway.call('/dept/finance/x', gateway.mint(key=key, sub='hr')).status_code == 200
        again = gateway.route('hr', **more)
        assert recap(again.stdout)['changed'] == 0
        assert vault.current_version('secret', 'federation/_platform/gateway') == 1
        assert vault.current_version('secret', 'federation/hr') == 2
    finally:
        stop_pidfile(gateway.pidfile)
        for server in gateway.backends.values():
            server.stop()
        vault.stop()
