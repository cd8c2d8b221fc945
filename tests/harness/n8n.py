"""A real n8n server on loopback, installed once into the cache folder.

The environment keeps n8n from calling out (no telemetry, version checks, templates,
community packages, license renewal). Ready means the API routes exist:
``/rest/settings`` answers JSON 200 (``/healthz`` answers earlier than that).
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

DEFAULT_VERSION = os.environ.get('FEDERATION_N8N_VERSION', '1.123.81')

QUIET_ENV = {
    'N8N_DIAGNOSTICS_ENABLED': 'false',
    'N8N_DIAGNOSTICS_CONFIG_FRONTEND': '',
    'N8N_DIAGNOSTICS_CONFIG_BACKEND': '',
    'N8N_VERSION_NOTIFICATIONS_ENABLED': 'false',
    'N8N_VERSION_NOTIFICATIONS_WHATS_NEW_ENABLED': 'false',
    'N8N_PERSONALIZATION_ENABLED': 'false',
    'N8N_TEMPLATES_ENABLED': 'false',
    'N8N_HIRING_BANNER_ENABLED': 'false',
    'N8N_DYNAMIC_BANNERS_ENABLED': 'false',
    'N8N_COMMUNITY_PACKAGES_ENABLED': 'false',
    'N8N_VERIFIED_PACKAGES_ENABLED': 'false',
    'N8N_UNVERIFIED_PACKAGES_ENABLED': 'false',
    'N8N_LICENSE_AUTO_RENEW_ENABLED': 'false',
    'N8N_AI_ENABLED': 'false',
    'EXTERNAL_FRONTEND_HOOKS_URLS': '',
    'N8N_SECURE_COOKIE': 'false',
    'N8N_LISTEN_ADDRESS': '127.0.0.1',
    'N8N_LOG_LEVEL': 'warn',
    'N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS': 'false',
    'DB_SQLITE_POOL_SIZE': '2',
    'N8N_RUNNERS_ENABLED': 'false',
    'N8N_BLOCK_ENV_ACCESS_IN_NODE': 'true',
    'N8N_GIT_NODE_DISABLE_BARE_REPOS': 'true',
}


def install(version: str = DEFAULT_VERSION) -> Path:
    """The folder of an installed n8n ``version``, installing it into the cache the first time."""
    proc = subprocess.run([str(REPO / 'scripts' / 'install-n8n'), version], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise HarnessError('installing n8n %s failed:\n%s' % (version, proc.stderr[-4000:]))
    return Path(proc.stdout.strip().splitlines()[-1])


@dataclass
class N8nServer:
    version: str = DEFAULT_VERSION
    port: int = 0
    base: Path | None = None
    database: dict | None = None     # {host, port, user, password, dbname} for PostgreSQL; SQLite otherwise
    env: dict = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return 'http://127.0.0.1:%d' % self.port

    @property
    def major(self) -> int:
        return int(self.version.split('.')[0])

    @property
    def logfile(self) -> Path:
        return self.base / 'n8n.log'

    def environment(self) -> dict:
        home = install(self.version)
        env = dict(os.environ)
        env.update(QUIET_ENV)
        env.update({
            'N8N_USER_FOLDER': str(self.base),
            'N8N_PORT': str(self.port),
            'N8N_RUNNERS_BROKER_PORT': str(free_port()),
            'N8N_ENCRYPTION_KEY': self.env.get('N8N_ENCRYPTION_KEY', 'harness-encryption-key-0123456789'),
            'WEBHOOK_URL': self.url + '/',
        })
        if self.major >= 2:
            env['N8N_DISABLED_MODULES'] = 'mcp-registry'  # it calls out at boot; 1.x has no such module
        if (home / 'bin' / 'node').exists():
            env['PATH'] = '%s:%s' % (home / 'bin', env.get('PATH', ''))
        if self.database:
            env.update({
                'DB_TYPE': 'postgresdb',
                'DB_POSTGRESDB_HOST': self.database['host'],
                'DB_POSTGRESDB_PORT': str(self.database['port']),
                'DB_POSTGRESDB_USER': self.database['user'],
                'DB_POSTGRESDB_PASSWORD': self.database['password'],
                'DB_POSTGRESDB_DATABASE': self.database['dbname'],
            })
        env.update(self.env)
        return env

    def start(self, timeout: float = 120):
        if self.base is None:
            self.base = Path(tempfile.mkdtemp(prefix='federation-n8n-'))
        self.base.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        env = self.environment()
        binary = install(self.version) / 'node_modules' / '.bin' / 'n8n'
        log = open(self.logfile, 'ab')
        self.process = subprocess.Popen([str(binary), 'start'], env=env, cwd=str(self.base), stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self.ready, timeout, 'n8n %s on %s' % (self.version, self.url), interval=0.5,
                 process=self.process, log=self.logfile)
        return self

    def cli(self, *args, timeout: float = 180) -> subprocess.CompletedProcess:
        """Run the n8n command line against this server's folder and database (``update:workflow ...``)."""
        env = self.environment()
        env['N8N_PORT'] = str(free_port())   # a command that starts a server must not take the real one's port
        binary = install(self.version) / 'node_modules' / '.bin' / 'n8n'
        return subprocess.run([str(binary)] + list(args), env=env, cwd=str(self.base), capture_output=True, text=True,
                              timeout=timeout, check=False)

    def ready(self) -> bool:
        with urllib.request.urlopen(self.url + '/rest/settings', timeout=2) as resp:
            if resp.status != 200:
                return False
            json.loads(resp.read())  # the "starting up" page is HTML
            return True

    def stop(self):
        stop_process_group(self.process, timeout=20)
        self.process = None

    def remove(self):
        self.stop()
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
