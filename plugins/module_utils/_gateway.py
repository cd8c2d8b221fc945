# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""The cross-department API gateway (HAProxy): its department set, map files, generated backends,
runtime API and process control.

Runs on the gateway host with the standard library only. The gateway keeps its own record of the
departments it routes (``departments.json`` in its folder) and derives everything else from it:

- ``backends.map``  target -> backend name (``dept_<target>``): which departments exist and where they route
- ``callers.map``   ``<caller>:<target>`` -> 1: the allow-list (from each target's ``callers``)
- ``limits.map``    caller -> requests allowed per period
- ``periods.map``   caller -> period in seconds
- ``departments.cfg`` one backend per department plus one stick table per rate-limit period in use

Maps change at once through the runtime API and are written to disk (runtime edits vanish on reload);
``departments.cfg`` changes need a reload, which keeps the rate counters through the ``peers`` section.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

from ansible_collections.federation.platform.plugins.module_utils._naming import department_name_error

STATE_FILE = 'departments.json'
FRAGMENT_FILE = 'departments.cfg'
PUBLIC_KEY_FILE = 'gateway-public.pem'
MAP_FILES = ('backends.map', 'callers.map', 'limits.map', 'periods.map')
PEERS_SECTION = 'federation_gateway'
BACKEND_PREFIX = 'dept_'
TABLE_PREFIX = 'federation_rl_'
DEFAULT_WEBHOOK_PATH = '/webhook'
DEFAULT_RATE_LIMIT = {'requests': 60, 'per_seconds': 60}
# HAProxy 2.6 hands its stick tables to the next worker only once its own peer resync period (5 s) is
# over: a worker reloaded younger than that passes on no rate counters (measured). Reloads wait for it.
MIN_WORKER_AGE = 6

_HOST_RE = re.compile(r'^(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|\[[0-9a-fA-F:]+\]|'
                      r'(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)$')
_PATH_RE = re.compile(r'^(?:/[A-Za-z0-9._~-]+)*$')
_BACKEND_RE = re.compile(r'^(?:(?P<scheme>https?)://)?(?P<host>\[[0-9a-fA-F:]+\]|[^:/\[\]]+)(?::(?P<port>[0-9]{1,5}))?(?P<path>/[^?#]*)?$')


class GatewayError(Exception):
    """A problem the gateway could not get past; the message says what to do."""


# --------------------------------------------------------------------------- department records

def parse_backend(value, department):
    """Split a backend address into scheme, host, port and webhook path.

    Accepts ``host:port`` (plain HTTP, webhooks under /webhook) or a URL ``http(s)://host[:port][/path]``;
    a URL without a path means /webhook.
    """
    where = "department '%s', field 'backend'" % department
    if not isinstance(value, str) or not value:
        raise GatewayError('%s: give the address of its n8n webhooks as host:port or http(s)://host[:port]/webhook' % where)
    match = _BACKEND_RE.match(value.strip())
    if not match:
        raise GatewayError('%s: %r is not host:port or an http(s) URL' % (where, value))
    scheme = match.group('scheme') or 'http'
    host = match.group('host')
    if not _HOST_RE.match(host):
        raise GatewayError('%s: %r is not a host name or IP address' % (where, host))
    port = match.group('port')
    if port is None:
        if not match.group('scheme'):
            raise GatewayError('%s: %r has no port; write host:port or a URL' % (where, value))
        port = 443 if scheme == 'https' else 80
    port = int(port)
    if not 0 < port < 65536:
        raise GatewayError('%s: port %d is out of range 1-65535' % (where, port))
    path = (match.group('path') or '').rstrip('/')
    if not path:
        path = DEFAULT_WEBHOOK_PATH
    if not _PATH_RE.match(path):
        raise GatewayError('%s: path %r may hold only letters, digits and . _ ~ - between slashes' % (where, path))
    return {'scheme': scheme, 'host': host, 'port': port, 'path': path}


def normalize_department(raw):
    """A department record for the gateway: name, backend URL, callers, rate_limit. Raises GatewayError."""
    if not isinstance(raw, dict):
        raise GatewayError('each department must be a mapping with name, backend, callers and rate_limit')
    name = raw.get('name')
    problem = department_name_error(name)
    if problem:
        raise GatewayError('Invalid department for the gateway: %s' % problem)
    unknown = sorted(set(raw) - {'name', 'backend', 'callers', 'rate_limit'})
    if unknown:
        raise GatewayError("department '%s': unknown field(s) %s (known: name, backend, callers, rate_limit)"
                           % (name, ', '.join(unknown)))
    backend = parse_backend(raw.get('backend'), name)
    callers = raw.get('callers') or []
    if not isinstance(callers, list):
        raise GatewayError("department '%s', field 'callers': give a list of department names" % name)
    for caller in callers:
        problem = department_name_error(caller)
        if problem:
            raise GatewayError("department '%s', field 'callers': %s" % (name, problem))
    limit = raw.get('rate_limit') or {}
    if not isinstance(limit, dict) or set(limit) - {'requests', 'per_seconds'}:
        raise GatewayError("department '%s', field 'rate_limit': give a mapping with 'requests' and 'per_seconds'" % name)
    limit = dict(DEFAULT_RATE_LIMIT, **limit)
    for key in ('requests', 'per_seconds'):
        value = limit[key]
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 1000000:
            raise GatewayError("department '%s', field 'rate_limit.%s': give a whole number from 1 to 1000000" % (name, key))
        limit[key] = value
    return {
        'name': name,
        'backend': '%s://%s:%d%s' % (backend['scheme'], backend['host'], backend['port'], backend['path']),
        'callers': sorted(set(c for c in callers if c != name)),
        'rate_limit': {'requests': limit['requests'], 'per_seconds': limit['per_seconds']},
    }


def merge_departments(current, given, state='present', exclusive=False):
    """The department set after applying ``given`` (normalized records, or names when absent) to ``current``."""
    result = {} if exclusive and state == 'present' else {d['name']: d for d in current}
    if state == 'present':
        for record in given:
            result[record['name']] = record
    else:
        for name in given:
            result.pop(name, None)
    return [result[name] for name in sorted(result)]


# --------------------------------------------------------------------------- rendering

def render_maps(departments):
    """The content of every map file for the department set, as {file name: text}."""
    known = set(d['name'] for d in departments)
    backends, callers, limits, periods = [], [], [], []
    for dept in departments:
        name = dept['name']
        backends.append('%s %s%s' % (name, BACKEND_PREFIX, name))
        limits.append('%s %d' % (name, dept['rate_limit']['requests']))
        periods.append('%s %d' % (name, dept['rate_limit']['per_seconds']))
        for caller in dept['callers']:
            # A pair is allowed only once its caller is a department the gateway knows.
            if caller in known:
                callers.append('%s:%s 1' % (caller, name))
    header = '# Generated by federation.platform.gateway_routes from departments.json: do not edit.\n'
    return {
        'backends.map': header + ''.join(line + '\n' for line in sorted(backends)),
        'callers.map': header + ''.join(line + '\n' for line in sorted(callers)),
        'limits.map': header + ''.join(line + '\n' for line in sorted(limits)),
        'periods.map': header + ''.join(line + '\n' for line in sorted(periods)),
    }


def parse_map(text):
    """{key: value} of a map file's text (comments and blank lines ignored)."""
    entries = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        key, dummy, value = line.partition(' ')
        entries[key] = value.strip()
    return entries


def _is_ip(host):
    try:
        ipaddress.ip_address(host.strip('[]'))
        return True
    except ValueError:
        return False


def table_name(period):
    return '%s%ds' % (TABLE_PREFIX, period)


def render_fragment(departments, peers=PEERS_SECTION):
    """``departments.cfg``: the stick tables of the rate-limit periods in use and one backend per department."""
    periods = sorted(set(d['rate_limit']['per_seconds'] for d in departments) | {DEFAULT_RATE_LIMIT['per_seconds']})
    out = ['# Generated by federation.platform.gateway_routes from departments.json: do not edit.',
           '# One stick table per rate-limit period in use, kept across reloads through the peers section.']
    for period in periods:
        out += ['', 'backend %s' % table_name(period),
                '    stick-table type string len 32 size 100k expire %ds store http_req_rate(%ds) peers %s'
                % (max(period, 1), period, peers)]
    for dept in departments:
        backend = parse_backend(dept['backend'], dept['name'])
        authority = backend['host'] if backend['port'] in (80, 443) else '%s:%d' % (backend['host'], backend['port'])
        out += ['', '# department %s: webhooks at %s' % (dept['name'], dept['backend']),
                'backend %s%s' % (BACKEND_PREFIX, dept['name'])]
        # The limit is the caller's: count the request in the table of the caller's period.
        for period in periods:
            out.append('    http-request track-sc0 var(txn.fed_sub) table %s if { var(txn.fed_period) -m str %d }'
                       % (table_name(period), period))
        out += [
            '    http-request return status 429 content-type application/json hdr Retry-After "%[var(txn.fed_period)]" '
            'lf-string \'{"error":"rate limit exceeded","caller":"%[var(txn.fed_sub)]","limit":%[var(txn.fed_limit)],'
            '"per_seconds":%[var(txn.fed_period)]}\' if { sc_http_req_rate(0),sub(txn.fed_limit) -m int gt 0 }',
            '    http-request replace-path ^/dept/[^/]+/?(.*)$ %s/\\1' % backend['path'],
            '    http-request set-header Host %s' % authority,
            '    http-request set-header X-Federation-Caller %[var(txn.fed_sub)]',
            '    http-request del-header Authorization',
        ]
        server = '    server n8n %s:%d' % (backend['host'], backend['port'])
        if not _is_ip(backend['host']):
            # A host name: resolved at start, and the gateway still starts when it does not resolve.
            server += ' init-addr last,libc,none'
        if backend['scheme'] == 'https':
            server += ' ssl verify required ca-file @system-ca sni str(%s)' % backend['host']
        out.append(server)
    return '\n'.join(out) + '\n'


# --------------------------------------------------------------------------- files

def read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise


def write_atomic(path, text, mode=0o644):
    folder = os.path.dirname(path) or '.'
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.%s.' % os.path.basename(path))
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, 'w') as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class FolderLock(object):
    """An exclusive lock on the gateway folder, so concurrent runs update the department set one at a time."""

    def __init__(self, folder, name='.lock'):
        self.path = os.path.join(folder, name)
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


def process_lock(master_socket):
    """The lock that lets one run at a time start, reload or edit the running gateway (through its master socket):
    a run that found the gateway starting would otherwise reach a master socket that does not answer yet."""
    return FolderLock(os.path.dirname(master_socket) or '.', os.path.basename(master_socket) + '.lock')


def load_state(folder):
    text = read_text(os.path.join(folder, STATE_FILE))
    if text is None:
        return []
    try:
        doc = json.loads(text)
        return [normalize_department(d) for d in doc.get('departments', [])]
    except (ValueError, AttributeError, GatewayError) as exc:
        raise GatewayError('%s is damaged (%s): restore it, or rebuild it with exclusive=true and every department'
                           % (os.path.join(folder, STATE_FILE), exc))


def dump_state(departments):
    return json.dumps({'departments': departments}, indent=2, sort_keys=True) + '\n'


# --------------------------------------------------------------------------- runtime API

_BIND = re.compile(r'^\s*bind\s+(\S+)', re.M)


def bind_addresses(config_texts):
    """The (address, port) pairs of the TCP ``bind`` lines of HAProxy configurations (``*`` and an empty address
    mean every IPv4 address; sockets, ranges and other forms are left out)."""
    found = []
    for text in config_texts:
        for spec in _BIND.findall(text):
            for item in spec.split(','):
                host, sep, port = item.rpartition(':')
                if not sep or not port.isdigit() or '@' in host or '/' in host:
                    continue
                host = host.strip('[]')
                found.append(('0.0.0.0' if host in ('', '*') else host, int(port)))
    return found


def taken(address, port):
    """Whether another socket already listens on ``address``:``port`` (HAProxy binds with SO_REUSEPORT, so a
    second HAProxy would share the port silently instead of failing)."""
    family = socket.AF_INET6 if ':' in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        return False
    except OSError as exc:
        return exc.errno == errno.EADDRINUSE
    finally:
        sock.close()


class Runtime(object):
    """The master CLI of a master-worker HAProxy (``-S <socket>``): commands to the master or to the current worker."""

    def __init__(self, socket_path, timeout=10.0):
        self.socket_path = socket_path
        self.timeout = timeout

    def available(self):
        if not self.socket_path or not os.path.exists(self.socket_path):
            return False
        try:
            self.master('show proc')
            return True
        except (OSError, socket.error):
            return False

    def master(self, command):
        return self._send(command)

    def worker(self, command):
        """A command for the current worker (relative process 1)."""
        return self._send('@1 ' + command)

    def _send(self, command):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
            sock.sendall(command.encode() + b'\n')
            sock.shutdown(socket.SHUT_WR)
            chunks = []
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
        finally:
            sock.close()
        return b''.join(chunks).decode('utf-8', 'replace')

    def show_map(self, path):
        """{key: value} of a map as the running worker holds it, or None when it has not loaded that map."""
        out = self.worker('show map %s' % path)
        if 'Unknown map identifier' in out or 'unknown map' in out.lower():
            return None
        entries = {}
        for line in out.splitlines():
            parts = line.split(None, 2)
            if len(parts) == 3 and parts[0].startswith('0x'):
                entries[parts[1]] = parts[2].strip()
        return entries

    def map_commands(self, path, current, wanted):
        """The runtime commands that turn ``current`` into ``wanted`` (deletions first)."""
        commands = []
        for key in sorted(set(current) - set(wanted)):
            commands.append('del map %s %s' % (path, key))
        for key in sorted(wanted):
            if key not in current:
                commands.append('add map %s %s %s' % (path, key, wanted[key]))
            elif current[key] != wanted[key]:
                commands.append('set map %s %s %s' % (path, key, wanted[key]))
        return commands

    def run_worker(self, command):
        out = self.worker(command).strip()
        if out and out.lower() not in ('done.',):
            raise GatewayError("HAProxy refused '%s': %s" % (command, out))

    def processes(self):
        """``show proc`` parsed: master pid and reload counts, current workers, old workers."""
        out = self.master('show proc')
        info = {'master': None, 'reloads': None, 'failed': None, 'workers': [], 'old_workers': [], 'worker_age': None}
        section = None
        for line in out.splitlines():
            if line.startswith('# workers'):
                section = 'workers'
                continue
            if line.startswith('# old workers'):
                section = 'old_workers'
                continue
            if line.startswith('#'):
                section = None if not line.startswith('#<PID>') else section
                continue
            parts = line.split()
            if len(parts) < 3:
                continue
            if parts[1] == 'master':
                info['master'] = int(parts[0])
                info['reloads'] = int(parts[2])
                failed = re.search(r'\[failed: (\d+)\]', line)
                info['failed'] = int(failed.group(1)) if failed else 0
            elif section in ('workers', 'old_workers') and parts[1] == 'worker':
                info[section].append(int(parts[0]))
                if section == 'workers' and len(parts) >= 4:
                    age = uptime_seconds(parts[3])
                    if age is not None and (info['worker_age'] is None or age < info['worker_age']):
                        info['worker_age'] = age
        return info


def uptime_seconds(text):
    """Seconds of an uptime as ``show proc`` prints it (``0d00h01m05s``), or None."""
    match = re.match(r'^(\d+)d(\d+)h(\d+)m(\d+)s$', text)
    if not match:
        return None
    days, hours, minutes, seconds = (int(g) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


# --------------------------------------------------------------------------- process control

def checksum(paths):
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.encode() + b'\0')
        text = read_text(path)
        digest.update(b'<missing>' if text is None else text.encode())
        digest.update(b'\0')
    return digest.hexdigest()


def pid_alive(pidfile):
    """The master pid from ``pidfile`` when that process runs and is HAProxy, else None."""
    text = read_text(pidfile)
    if not text:
        return None
    try:
        pid = int(text.split()[0])
    except ValueError:
        return None
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            cmdline = handle.read().split(b'\0')
    except (IOError, OSError):
        return None
    if not any(os.path.basename(part).startswith(b'haproxy') for part in cmdline[:1]):
        return None
    return pid


UNIT_TEMPLATE = """# Generated by federation.platform.gateway_service: do not edit.
[Unit]
Description=Federation cross-department API gateway (HAProxy)
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
ExecStartPre={check}
ExecStart={run}
ExecReload={check}
ExecReload=/bin/kill -USR2 $MAINPID
KillMode=mixed
Restart=always
RestartSec=2s

[Install]
WantedBy=multi-user.target
"""


def _unit_word(word):
    """``word`` as one argument of a systemd Exec line: specifiers and variables escaped, quoted when it has spaces."""
    word = word.replace('%', '%%').replace('$', '$$')
    if any(c.isspace() or c in '"\\;' for c in word):
        word = '"%s"' % word.replace('\\', '\\\\').replace('"', '\\"')
    return word


class Process(object):
    """A master-worker HAProxy: started by the gateway itself (no init system needed) or, with ``systemd_unit``,
    by systemd from a unit of its own that brings it back after a crash or a reboot. Reloads go through the
    master CLI either way."""

    def __init__(self, binary, config_files, pidfile, master_socket, timeout=30.0, systemd_unit=None, systemctl=None):
        self.binary = binary
        self.config_files = list(config_files)
        self.pidfile = pidfile
        self.runtime = Runtime(master_socket)
        self.master_socket = master_socket
        self.timeout = timeout
        self.systemd_unit = systemd_unit
        self.systemctl = systemctl

    def unit_text(self):
        """The systemd unit that runs this gateway in the foreground (``-Ws``: master-worker with readiness notification)."""
        check = ' '.join(_unit_word(a) for a in [self.binary, '-c', '-q'] + self._args())
        run = ' '.join(_unit_word(a) for a in [self.binary, '-Ws', '-S', '%s,mode,600' % self.master_socket, '-p', self.pidfile]
                       + self._args())
        return UNIT_TEMPLATE.format(check=check, run=run)

    def _systemd(self, *args, **kwargs):
        proc = subprocess.run([self.systemctl] + list(args), capture_output=True, text=True, check=False)
        if proc.returncode != 0 and not kwargs.get('allow_failure'):
            detail = (proc.stderr or proc.stdout).strip()[-1000:]
            raise GatewayError('systemctl %s failed (%d): %s' % (' '.join(args), proc.returncode, detail))
        return proc

    def daemon_reload(self):
        self._systemd('daemon-reload')

    def enabled(self):
        return self._systemd('is-enabled', self.systemd_unit, allow_failure=True).stdout.strip() == 'enabled'

    def enable(self):
        self._systemd('enable', self.systemd_unit)

    def _args(self):
        args = []
        for path in self.config_files:
            args += ['-f', path]
        return args

    def check(self):
        proc = subprocess.run([self.binary, '-c', '-q'] + self._args(), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip()[-2000:]
            raise GatewayError('the configuration %s is not valid: %s' % (', '.join(self.config_files), detail))

    def running(self):
        return pid_alive(self.pidfile)

    def start(self):
        if os.path.exists(self.master_socket):
            os.unlink(self.master_socket)
        if self.systemd_unit:
            self._systemd('start', self.systemd_unit)
            return self._wait(lambda info: info['workers'], 'start')
        cmd = [self.binary, '-W', '-D', '-S', '%s,mode,600' % self.master_socket, '-p', self.pidfile] + self._args()
        # The daemon keeps the descriptors it inherits: give it a file, never a pipe someone waits on.
        log = self.pidfile + '.log'
        with open(log, 'w') as out:
            code = subprocess.call(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, close_fds=True)
        if code != 0:
            raise GatewayError('HAProxy did not start (exit code %d): %s' % (code, (read_text(log) or '').strip()[-2000:]))
        return self._wait(lambda info: info['workers'], 'start')

    def reload(self):
        # A master started a moment ago (by systemd, say) may not answer on its socket yet.
        before = self._wait(lambda info: info['master'] is not None, 'start (master CLI)')
        if before['worker_age'] is not None and before['worker_age'] < MIN_WORKER_AGE:
            # Let the running worker finish its peer resync period, or the rate counters are lost.
            time.sleep(MIN_WORKER_AGE - before['worker_age'])
            before = self._wait(lambda info: info['master'] is not None, 'start (master CLI)')
        try:
            self.runtime.master('reload')
        except (OSError, socket.error):
            pass  # the master closes the connection as it re-executes itself
        info = self._wait(lambda now: (now['reloads'] is not None and now['reloads'] > before['reloads'] and now['workers']
                                       and not set(now['workers']) & set(before['workers'])), 'reload')
        if info['failed'] > before['failed']:
            raise GatewayError('HAProxy could not load the new configuration and keeps serving the previous one')
        return info

    def stop(self):
        pid = self.running()
        if pid is None:
            return False
        if self.systemd_unit:
            self._systemd('stop', self.systemd_unit)
        else:
            os.kill(pid, signal.SIGUSR1)  # soft stop: finish the requests in flight, then leave
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline and pid_alive(self.pidfile) == pid:
            time.sleep(0.1)
        if pid_alive(self.pidfile) == pid:
            os.kill(pid, signal.SIGTERM)
        for path in (self.pidfile, self.master_socket):
            if os.path.exists(path):
                os.unlink(path)
        return True

    def _wait(self, ready, what):
        deadline = time.monotonic() + self.timeout
        last = None
        while time.monotonic() < deadline:
            try:
                info = self.runtime.processes()
                if ready(info):
                    return info
                last = info
            except (OSError, socket.error, ValueError) as exc:
                last = exc
            time.sleep(0.1)
        raise GatewayError('HAProxy did not finish its %s within %.0f s (last state: %s)' % (what, self.timeout, last))
