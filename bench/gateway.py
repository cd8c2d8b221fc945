#!/usr/bin/env python
"""Gateway throughput in one run: the backend direct, bare HAProxy with only the JWT signature check,
and the Federation gateway with every check on (signature, alg, iss, exp, known caller, known target,
allow-list, per-caller rate limit, path rewrite, header changes), as the api_gateway role sets it up.

    .venv/bin/python bench/gateway.py [--duration 10] [--connections 50] [--key-type ec_p256|rsa_2048]

The backend is an HAProxy frontend that answers at once, so the numbers measure the gateway, not n8n.
Prints seconds per phase and the ratios; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

# First: makes the repository and the collection importable.
import _paths  # noqa: F401 pylint: disable=unused-import

import yaml  # noqa: E402
from ansible.parsing.vault import VaultLib, VaultSecret  # noqa: E402

from tests.harness.common import free_port  # noqa: E402
from tests.harness.haproxy import HAProxy, echo_haproxy, stop_pidfile, wrk  # noqa: E402
from tests.helpers import Ansible  # noqa: E402

BARE = """global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend bare_jwt
    bind 127.0.0.1:{port}
    http-request deny deny_status 401 unless {{ http_auth_bearer,jwt_verify("{alg}","{key}") -m int 1 }}
    default_backend department
backend department
    server n8n {backend}
"""


def phase(name, started):
    print('[%6.1f s] %s' % (time.monotonic() - started, name), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--duration', type=int, default=10, help='seconds of load per target')
    parser.add_argument('--connections', type=int, default=50)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--key-type', default='ec_p256', choices=['ec_p256', 'rsa_2048', 'rsa_3072'])
    args = parser.parse_args(argv)
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix='federation-bench-gateway-'))
    home = base / 'home'
    home.mkdir(mode=0o700)
    (home / 'vault-password').write_text(secrets.token_urlsafe(24) + '\n')
    specs = base / 'departments'
    specs.mkdir()
    (specs / 'finance.yml').write_text(yaml.safe_dump({'callers': ['hr']}))
    (specs / 'hr.yml').write_text(yaml.safe_dump({'rate_limit': {'requests': 1000000, 'per_seconds': 1}}))
    folder = base / 'gateway'
    port = free_port()
    backend_server, backends = echo_haproxy(['finance', 'hr'])
    bare = None
    results = {}
    try:
        phase('backends up', started)
        ansible = Ansible(home, None)
        extra = json.dumps({'federation_departments_dir': str(specs), 'api_gateway_dir': str(folder),
                            'api_gateway_port': port, 'api_gateway_peer_port': free_port(),
                            'api_gateway_key_type': args.key_type})
        for dept in ('finance', 'hr'):
            t0 = time.monotonic()
            run = ansible.playbook('playbooks/gateway.yml', '-e', 'dept=' + dept, '-e', 'gateway_backend=' + backends[dept],
                                   '-e', extra)
            if run.returncode != 0:
                raise SystemExit('routing %s failed:\n%s' % (dept, run.stdout[-4000:]))
            phase('gateway routes %s (playbook, %.1f s)' % (dept, time.monotonic() - t0), started)
        vault = VaultLib([('default', VaultSecret((home / 'vault-password').read_text().strip().encode()))])
        token = yaml.safe_load(vault.decrypt((home / 'secrets' / 'hr.yml').read_bytes()))['secrets']['gateway_token']
        algorithm = 'ES256' if args.key_type == 'ec_p256' else 'RS256'
        bare_port = free_port()
        bare = HAProxy(BARE.format(port=bare_port, alg=algorithm, key=folder / 'gateway-public.pem', backend=backends['finance'])).start()
        phase('bare HAProxy (JWT signature only) up', started)

        headers = {'Authorization': 'Bearer ' + token}
        targets = [
            ('backend direct', 'http://%s/webhook/ask' % backends['finance'], {}),
            ('HAProxy, JWT signature only', 'http://127.0.0.1:%d/webhook/ask' % bare_port, headers),
            ('Federation gateway, all checks', 'http://127.0.0.1:%d/dept/finance/ask' % port, headers),
        ]
        for name, url, hdrs in targets:
            result = wrk(url, duration=args.duration, connections=args.connections, threads=args.threads, headers=hdrs)
            if result['non_2xx'] or result['errors']:
                raise SystemExit('%s: %d non-2xx answers and %d socket errors:\n%s'
                                 % (name, result['non_2xx'], result['errors'], result['output']))
            results[name] = result
            phase('%s: %.0f req/s, p50 %.2f ms, p99 %.2f ms (%d requests)'
                  % (name, result['rate'], result['latency_ms'].get('50', 0), result['latency_ms'].get('99', 0), result['requests']),
                  started)
    finally:
        if bare:
            bare.stop()
        stop_pidfile(folder / 'run' / 'haproxy.pid')
        backend_server.stop()
        shutil.rmtree(base, ignore_errors=True)

    direct, only_jwt, full = (results[name]['rate'] for name, dummy, dummy2 in targets)
    print('\n%s tokens, wrk -t%d -c%d -d%ds on loopback' % (algorithm, args.threads, args.connections, args.duration))
    print('%-34s %10s %9s %9s' % ('', 'req/s', 'p99 ms', 'ratio'))
    for name, dummy, dummy2 in targets:
        r = results[name]
        print('%-34s %10.0f %9.2f %8.2fx' % (name, r['rate'], r['latency_ms'].get('99', 0), r['rate'] / direct))
    print('all checks / JWT only: %.2f' % (full / only_jwt))
    return 0


if __name__ == '__main__':
    sys.exit(main())
