"""A real OAuth 2.0 authorization server on loopback: npm ``oidc-provider``, installed once.

``oidc/server.mjs`` configures it with RFC 7591 dynamic registration behind an initial access
token, RFC 7592 registration management (the registration access token rotates on every update),
the client credentials grant, and a resource server whose access tokens are JWTs.

    server = OidcServer(scopes=('calls:read', 'calls:write')).start()
    server.issuer, server.registration_endpoint, server.token_endpoint
    server.initial_access_token            # registers clients whose secrets never expire
    server.expiring_initial_access_token   # registers clients whose secrets expire after secret_ttl s
    OidcServer(interactive=True)           # with sign-in and consent pages (any login signs in)
    server.stop()
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .common import HarnessError, REPO, free_port, stop_process_group, wait_for

DEFAULT_VERSION = os.environ.get('FEDERATION_OIDC_PROVIDER_VERSION', '8.8.1')
SERVER_SCRIPT = Path(__file__).resolve().parent / 'oidc' / 'server.mjs'


def install(version: str = DEFAULT_VERSION) -> Path:
    """The folder holding node_modules/oidc-provider, installing it into the cache the first time."""
    proc = subprocess.run([str(REPO / 'scripts' / 'install-oidc-provider'), version], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise HarnessError('installing oidc-provider %s failed:\n%s' % (version, proc.stderr[-4000:]))
    return Path(proc.stdout.strip().splitlines()[-1])


@dataclass
class OidcServer:
    version: str = DEFAULT_VERSION
    port: int = 0
    resource: str = 'urn:federation:test-api'
    scopes: tuple = ('calls:read', 'calls:write')
    secret_ttl: int = 3600
    interactive: bool = False       # oidc-provider's sign-in and consent pages, for consent flows
    base: Path | None = None
    process: subprocess.Popen | None = None
    info: dict = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return 'http://127.0.0.1:%d' % self.port

    @property
    def registration_endpoint(self) -> str:
        return self.issuer + '/reg'

    @property
    def token_endpoint(self) -> str:
        return self.issuer + '/token'

    @property
    def initial_access_token(self) -> str:
        return self.info['initial_access_token']

    @property
    def expiring_initial_access_token(self) -> str:
        return self.info['expiring_initial_access_token']

    @property
    def logfile(self) -> Path:
        return self.base / 'oidc-provider.log'

    def start(self, timeout: float = 30):
        home = install(self.version)
        if self.base is None:
            self.base = Path(tempfile.mkdtemp(prefix='federation-oidc-'))
        if not self.port:
            self.port = free_port()
        env = dict(os.environ)
        env.update({
            'OIDC_PROVIDER_MODULE': str(home / 'node_modules' / 'oidc-provider' / 'lib' / 'index.js'),
            'OIDC_PORT': str(self.port),
            'OIDC_RESOURCE': self.resource,
            'OIDC_SCOPES': ' '.join(self.scopes),
            'OIDC_SECRET_TTL': str(self.secret_ttl),
            'OIDC_DEV_INTERACTIONS': '1' if self.interactive else '0',
            'NODE_ENV': 'production',
        })
        stdout = self.base / 'oidc-provider.json'
        with open(stdout, 'wb') as out, open(self.logfile, 'ab') as log:
            self.process = subprocess.Popen(['node', str(SERVER_SCRIPT)], env=env, cwd=str(self.base), stdout=out,
                                            stderr=log, start_new_session=True)
        wait_for(lambda: self._ready(stdout), timeout, 'oidc-provider on %s' % self.issuer, interval=0.1,
                 process=self.process, log=self.logfile)
        return self

    def _ready(self, stdout: Path) -> bool:
        text = stdout.read_text()
        if not text.strip():
            return False
        self.info = json.loads(text.splitlines()[0])
        with urllib.request.urlopen(self.issuer + '/.well-known/openid-configuration', timeout=2) as resp:
            return resp.status == 200

    def warnings(self) -> str:
        """What the server wrote to stderr (it warns about development-only settings there)."""
        return self.logfile.read_text() if self.logfile.exists() else ''

    def stop(self):
        stop_process_group(self.process, timeout=10)
        self.process = None

    def remove(self):
        self.stop()
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
