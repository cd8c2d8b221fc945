"""Docker objects for the tests: Federation's images, a PostgreSQL container, an SSH test host.

Images are built once (playbooks/build_images.yml tags them by content, so later sessions find
them). Every container, network and volume a test makes carries a unique prefix and the label
``federation.prefix``, and ``remove_prefixed`` removes them all.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .common import REPO, HarnessError, free_port, run, wait_for
from .docker import ensure_engine

_IMAGES: dict | None = None


def unique_prefix(kind: str = 'fedt') -> str:
    return '%s%s' % (kind, secrets.token_hex(4))


def build_images() -> dict:
    """Federation's images (built when missing); a dict of name -> image reference."""
    global _IMAGES
    if _IMAGES is not None:
        return _IMAGES
    ensure_engine()
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'), ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json',
               ANSIBLE_LOAD_CALLBACK_PLUGINS='1', ANSIBLE_NOCOLOR='1')
    playbook = Path(sys.executable).parent / 'ansible-playbook'
    proc = subprocess.run([str(playbook), 'playbooks/build_images.yml'], cwd=str(REPO), env=env, capture_output=True,
                          text=True, check=False, timeout=3600)
    try:
        data = json.JSONDecoder().raw_decode(proc.stdout[proc.stdout.index('{'):])[0]
    except ValueError:
        raise HarnessError('building the images failed (rc %d):\n%s\n%s' % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    if proc.returncode != 0:
        raise HarnessError('building the images failed:\n%s' % proc.stdout[-4000:])
    for task in data['plays'][0]['tasks']:
        result = task['hosts'].get('localhost', {})
        if 'images_refs' in result:
            _IMAGES = result['images_refs']
            return _IMAGES
    raise HarnessError('playbooks/build_images.yml did not show the image names')


def docker(*args, check=True) -> subprocess.CompletedProcess:
    if check:
        return run(['docker'] + list(args))
    return subprocess.run(['docker'] + list(args), capture_output=True, text=True, check=False)


def inspect(name: str) -> dict | None:
    proc = docker('inspect', name, check=False)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout)[0]


def remove_prefixed(prefix: str):
    """Remove the containers, networks and volumes labelled federation.prefix=<prefix>."""
    label = 'label=federation.prefix=%s' % prefix
    containers = docker('ps', '-aq', '--filter', label, check=False).stdout.split()
    if containers:
        docker('rm', '-fv', *containers, check=False)
    networks = docker('network', 'ls', '-q', '--filter', label, check=False).stdout.split()
    for network in networks:
        # Containers of other prefixes (a test's platform database) may still be joined: leave them
        # first, or the network outlives the test and the engine runs out of address pools.
        detach_all(network)
    if networks:
        docker('network', 'rm', *networks, check=False)
    volumes = docker('volume', 'ls', '-q', '--filter', label, check=False).stdout.split()
    if volumes:
        docker('volume', 'rm', '-f', *volumes, check=False)


def detach_all(network: str):
    """Disconnect every container from ``network``."""
    proc = docker('network', 'inspect', network, '--format', '{{json .Containers}}', check=False)
    if proc.returncode != 0:
        return
    for container in (json.loads(proc.stdout) or {}):
        docker('network', 'disconnect', '-f', network, container, check=False)


# Prefixes that only tests and benchmarks give their Docker objects.
TEST_PREFIXES = ('fedt', 'fede', 'fepg', 'fedbench')


def sweep_stale_networks(min_age: float = 1800) -> list:
    """Remove networks that tests made and lost (no container joined, older than ``min_age`` seconds):
    an interrupted run must not leave the engine without address pools for the next."""
    removed = []
    proc = docker('network', 'ls', '-q', '--filter', 'label=federation.prefix', check=False)
    ids = proc.stdout.split()
    if not ids:
        return removed
    for info in json.loads(docker('network', 'inspect', *ids, check=False).stdout or '[]'):
        prefix = (info.get('Labels') or {}).get('federation.prefix', '')
        if not prefix.startswith(TEST_PREFIXES) or info.get('Containers'):
            continue
        created = info.get('Created', '')[:19]
        try:
            age = time.time() - calendar.timegm(time.strptime(created, '%Y-%m-%dT%H:%M:%S'))
        except ValueError:
            continue
        if age >= min_age and docker('network', 'rm', info['Id'], check=False).returncode == 0:
            removed.append(info['Name'])
    return removed


@dataclass
class PostgresContainer:
    """The platform database image run by a test: published on 127.0.0.1, a random password."""

    prefix: str
    image: str
    port: int = 0
    user: str = 'federation'
    dbname: str = 'federation'
    password: str = field(default_factory=lambda: secrets.token_hex(16))

    @property
    def name(self) -> str:
        return '%s-platform-db' % self.prefix

    @property
    def conninfo(self) -> dict:
        return dict(host='127.0.0.1', port=self.port, user=self.user, password=self.password, dbname=self.dbname)

    def start(self, timeout: float = 90):
        self.port = self.port or free_port()
        docker('run', '-d', '--name', self.name, '--label', 'federation.prefix=%s' % self.prefix,
               '-e', 'POSTGRES_PASSWORD=%s' % self.password, '-p', '127.0.0.1:%d:5432' % self.port, self.image)
        wait_for(self._ready, timeout, 'PostgreSQL container %s' % self.name, interval=0.5)
        return self

    def _ready(self):
        import psycopg
        with psycopg.connect(connect_timeout=2, **self.conninfo) as conn:
            return conn.execute('SELECT 1').fetchone() == (1,)

    def create_n8n_database(self, department: str, password: str):
        """What the tenant_database role does for n8n: a login and a database it owns."""
        import psycopg
        from psycopg import sql
        name = 'n8n_' + department.replace('-', '_')
        with psycopg.connect(autocommit=True, **self.conninfo) as conn:
            if not conn.execute('SELECT 1 FROM pg_roles WHERE rolname = %s', (name,)).fetchone():
                conn.execute(sql.SQL('CREATE ROLE {} LOGIN PASSWORD {}').format(sql.Identifier(name), sql.Literal(password)))
            if not conn.execute('SELECT 1 FROM pg_database WHERE datname = %s', (name,)).fetchone():
                conn.execute(sql.SQL('CREATE DATABASE {} OWNER {}').format(sql.Identifier(name), sql.Identifier(name)))
        return name


@dataclass
class SshHost:
    """A test host reached over SSH: sshd in a container, driving this machine's Docker engine
    through its mounted socket. It shares this machine's network (sshd on a port of its own on 127.0.0.1),
    so, as on a real VPS, the ports its engine publishes are on its own loopback."""

    prefix: str
    base_image: str
    port: int = 0
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix='federation-ssh-')))

    @property
    def name(self) -> str:
        return '%s-ssh-host' % self.prefix

    @property
    def key(self) -> Path:
        return self.workdir / 'id_ed25519'

    def image(self) -> str:
        dockerfile = Path(__file__).parent / 'sshd' / 'Dockerfile'
        digest = hashlib.sha256(dockerfile.read_bytes() + self.base_image.encode()).hexdigest()[:12]
        tag = 'federation-test/sshd:%s' % digest
        if docker('image', 'inspect', tag, check=False).returncode != 0:
            docker('build', '-q', '--build-arg', 'BASE_IMAGE=%s' % self.base_image, '-t', tag, str(dockerfile.parent))
        return tag

    def start(self, timeout: float = 60):
        image = self.image()
        run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', str(self.key)])
        authorized = self.workdir / 'authorized_keys'
        authorized.write_text(Path(str(self.key) + '.pub').read_text())
        os.chmod(authorized, 0o600)
        self.port = self.port or free_port()
        docker('run', '-d', '--name', self.name, '--label', 'federation.prefix=%s' % self.prefix,
               '-v', '/var/run/docker.sock:/var/run/docker.sock',
               '-v', '%s:/root/.ssh/authorized_keys:ro' % authorized,
               '--network', 'host', image,
               '/usr/sbin/sshd', '-D', '-e', '-p', str(self.port), '-o', 'ListenAddress=127.0.0.1',
               '-o', 'PermitRootLogin=prohibit-password', '-o', 'PasswordAuthentication=no')
        wait_for(self._ready, timeout, 'SSH test host %s' % self.name, interval=0.5)
        return self

    def ssh_args(self) -> list:
        return ['ssh', '-i', str(self.key), '-p', str(self.port), '-o', 'StrictHostKeyChecking=no',
                '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', 'root@127.0.0.1']

    def _ready(self):
        return subprocess.run(self.ssh_args() + ['true'], capture_output=True, check=False, timeout=10).returncode == 0

    def inventory_host(self) -> dict:
        return {
            'ansible_host': '127.0.0.1',
            'ansible_port': self.port,
            'ansible_user': 'root',
            'ansible_connection': 'ssh',
            'ansible_ssh_private_key_file': str(self.key),
            'ansible_ssh_common_args': '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null',
            'ansible_python_interpreter': '/usr/bin/python3',
        }

    def remove(self):
        docker('rm', '-fv', self.name, check=False)
        subprocess.run(['rm', '-rf', str(self.workdir)], check=False)


def wait_container_running(name: str, timeout: float = 120) -> dict:
    def running():
        info = inspect(name)
        return info if info and info['State']['Running'] else None
    return wait_for(running, timeout, 'container %s running' % name, interval=0.5)


def health(name: str) -> str | None:
    info = inspect(name)
    if not info:
        return None
    return (info['State'].get('Health') or {}).get('Status')


def wait_healthy(name: str, timeout: float = 240):
    return wait_for(lambda: health(name) == 'healthy', timeout, 'container %s healthy' % name, interval=1)


def sleep_until(predicate, timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
