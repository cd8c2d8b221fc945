"""HAProxy on loopback for the gateway tests and the benchmark, plus the small servers around it.

- ``HAProxy``: a master-worker HAProxy of our own (``-W -S <master socket>``), its folder, pidfile and sockets
  in a temporary folder, started, hot-reloaded and stopped through its master CLI; ``runtime()`` sends runtime
  API commands to the current worker.
- ``stop_pidfile``: stop a gateway the role started (its master's pid in a pidfile we created).
- ``EchoServer``: a Python HTTP server in a thread that answers with what arrived (department, path, the
  ``X-Federation-Caller`` and ``Authorization`` headers), for the functional tests.
- ``echo_haproxy``: the same answer from an HAProxy frontend: fast enough to load the gateway without the
  backend being the bottleneck (wrk runs and the benchmark).
- ``wrk``: a bounded load on loopback, its counters parsed.

Nothing here touches the system's haproxy service.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ansible_collections.federation.platform.plugins.module_utils._gateway import Runtime

from .common import HarnessError, free_port, wait_for

HAPROXY = shutil.which('haproxy') or '/usr/sbin/haproxy'


def cli(socket_path, command: str, timeout: float = 10.0) -> str:
    """One command on an HAProxy CLI socket (master or worker); returns its answer."""
    return Runtime(str(socket_path), timeout).master(command)


def show_proc(master_socket) -> dict:
    """The master's ``show proc``: {'master': pid, 'reloads': n, 'workers': [pids]}."""
    out = cli(master_socket, 'show proc')
    info = {'master': None, 'reloads': None, 'workers': []}
    section = None
    for line in out.splitlines():
        if line.startswith('# workers'):
            section = 'workers'
        elif line.startswith('#'):
            section = None
        else:
            parts = line.split()
            if len(parts) >= 3 and parts[1] == 'master':
                info['master'], info['reloads'] = int(parts[0]), int(parts[2])
            elif section == 'workers' and len(parts) >= 2 and parts[1] == 'worker':
                info['workers'].append(int(parts[0]))
    return info


@dataclass
class HAProxy:
    """A master-worker HAProxy of our own, with its files in ``base`` (a new temporary folder by default)."""

    config: str
    base: Path | None = None
    process_started: bool = False

    def __post_init__(self):
        if self.base is None:
            self.base = Path(tempfile.mkdtemp(prefix='federation-haproxy-'))
        self.base = Path(self.base)

    @property
    def config_file(self) -> Path:
        return self.base / 'haproxy.cfg'

    @property
    def master_socket(self) -> Path:
        return self.base / 'master.sock'

    @property
    def pidfile(self) -> Path:
        return self.base / 'haproxy.pid'

    @property
    def log(self) -> Path:
        return self.base / 'haproxy.log'

    def write(self, config: str | None = None):
        if config is not None:
            self.config = config
        self.config_file.write_text(self.config if self.config.endswith('\n') else self.config + '\n')

    def check(self):
        proc = subprocess.run([HAPROXY, '-c', '-q', '-f', str(self.config_file)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise HarnessError('HAProxy configuration %s is not valid:\n%s' % (self.config_file, proc.stderr or proc.stdout))

    def start(self) -> 'HAProxy':
        self.write()
        self.check()
        with open(self.log, 'w') as out:
            code = subprocess.call([HAPROXY, '-W', '-D', '-S', '%s,mode,600' % self.master_socket, '-p', str(self.pidfile),
                                    '-f', str(self.config_file)], stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        if code != 0:
            raise HarnessError('HAProxy did not start (code %d): %s' % (code, self.log.read_text()[-3000:]))
        self.process_started = True
        wait_for(lambda: show_proc(self.master_socket)['workers'], 15, 'HAProxy in %s' % self.base, log=self.log)
        return self

    def reload(self, config: str | None = None) -> dict:
        """Hot reload (with a new configuration when given); returns ``show proc`` after it."""
        if config is not None:
            self.write(config)
            self.check()
        return reload_master(self.master_socket)

    def runtime(self, command: str) -> str:
        """A runtime API command for the current worker."""
        return cli(self.master_socket, '@1 ' + command)

    @property
    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self, remove: bool = True):
        if self.process_started:
            stop_pidfile(self.pidfile)
            self.process_started = False
        if remove:
            shutil.rmtree(self.base, ignore_errors=True)


def reload_master(master_socket, timeout: float = 15.0) -> dict:
    """Hot-reload the HAProxy behind ``master_socket`` (one this suite started); returns ``show proc`` after it."""
    before = show_proc(master_socket)
    try:
        cli(master_socket, 'reload')
    except OSError:
        pass
    return wait_for(lambda: _reloaded(master_socket, before), timeout, 'HAProxy reload through %s' % master_socket)


def _reloaded(master_socket, before):
    try:
        now = show_proc(master_socket)
    except OSError:
        return None
    if now['reloads'] is not None and now['reloads'] > before['reloads'] and now['workers'] \
            and not set(now['workers']) & set(before['workers']):
        return now
    return None


def stop_pidfile(pidfile, timeout: float = 15.0) -> bool:
    """Stop the HAProxy master whose pid is in ``pidfile`` (a process this suite started) and its workers."""
    try:
        pid = int(Path(pidfile).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        cmdline = Path('/proc/%d/cmdline' % pid).read_bytes()
    except OSError:
        return False
    if b'haproxy' not in cmdline.split(b'\0')[0]:
        return False  # the pid was reused by something that is not ours
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path('/proc/%d' % pid).exists():
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return True


# --------------------------------------------------------------------------- backends

class _EchoHandler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'federation-echo'

    def _answer(self):
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length).decode('utf-8', 'replace') if length else ''
        seen = {
            'department': self.server.department,
            'method': self.command,
            'path': self.path,
            'host': self.headers.get('Host'),
            'caller': self.headers.get('X-Federation-Caller'),
            'callers': self.headers.get_all('X-Federation-Caller') or [],
            'authorization': self.headers.get('Authorization'),
            'body': body,
        }
        self.server.requests.append(seen)
        data = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args):
        pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a proxy closing its pooled connection is not an error of the test


@dataclass
class EchoServer:
    """A department's stand-in for its n8n webhooks: answers every request with what it received."""

    department: str
    port: int = 0
    requests: list = field(default_factory=list)

    def start(self) -> 'EchoServer':
        self.port = self.port or free_port()
        self._server = _QuietServer(('127.0.0.1', self.port), _EchoHandler)
        self._server.department = self.department
        self._server.requests = self.requests
        self._thread = threading.Thread(target=self._server.serve_forever, name='echo-%s' % self.department, daemon=True)
        self._thread.start()
        return self

    @property
    def address(self) -> str:
        return '127.0.0.1:%d' % self.port

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


def echo_haproxy_config(departments: dict, maxconn: int = 4096) -> str:
    """An HAProxy that answers like EchoServer for each department name -> port in ``departments``."""
    lines = ['global', '    maxconn %d' % maxconn, '', 'defaults', '    mode http', '    timeout connect 5s',
             '    timeout client 30s', '    timeout server 30s', '    timeout http-keep-alive 30s']
    for name, port in sorted(departments.items()):
        lines += ['', 'frontend echo_%s' % name, '    bind 127.0.0.1:%d' % port,
                  '    http-request return status 200 content-type application/json lf-string '
                  '\'{"department":"%s","path":"%%[path,json(utf8s)]","caller":"%%[req.hdr(X-Federation-Caller),json(utf8s)]",'
                  '"authorization":"%%[req.hdr(Authorization),json(utf8s)]"}\'' % name]
    return '\n'.join(lines) + '\n'


def echo_haproxy(departments: list) -> tuple:
    """Start an HAProxy echo backend for each department; returns (HAProxy, {department: 'host:port'})."""
    ports = {name: free_port() for name in departments}
    server = HAProxy(echo_haproxy_config(ports)).start()
    return server, {name: '127.0.0.1:%d' % port for name, port in ports.items()}


# --------------------------------------------------------------------------- load

_WRK_REQUESTS = re.compile(r'(\d+) requests in ([\d.]+)(\w+)')
_WRK_NON2XX = re.compile(r'Non-2xx or 3xx responses: (\d+)')
_WRK_SOCKET = re.compile(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)')
_WRK_RATE = re.compile(r'Requests/sec:\s+([\d.]+)')
_WRK_LATENCY = re.compile(r'^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)\s*$', re.M)


def wrk(url: str, duration: int = 10, connections: int = 20, threads: int = 1, headers: dict | None = None,
        timeout: str = '10s') -> dict:
    """Run wrk against ``url`` and return its counters: requests, non_2xx, errors, rate, latency percentiles (ms)."""
    cmd = ['wrk', '-t%d' % threads, '-c%d' % connections, '-d%ds' % duration, '--timeout', timeout, '--latency']
    for name, value in (headers or {}).items():
        cmd += ['-H', '%s: %s' % (name, value)]
    proc = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=duration + 60, check=False)
    if proc.returncode != 0:
        raise HarnessError('wrk failed (%d): %s%s' % (proc.returncode, proc.stdout, proc.stderr))
    out = proc.stdout
    requests = _WRK_REQUESTS.search(out)
    if not requests:
        raise HarnessError('wrk printed no request count:\n%s' % out)
    socket_errors = _WRK_SOCKET.search(out)
    non2xx = _WRK_NON2XX.search(out)
    scale = {'us': 0.001, 'ms': 1.0, 's': 1000.0}
    return {
        'requests': int(requests.group(1)),
        'non_2xx': int(non2xx.group(1)) if non2xx else 0,
        'errors': sum(int(n) for n in socket_errors.groups()) if socket_errors else 0,
        'rate': float(_WRK_RATE.search(out).group(1)),
        'latency_ms': {p: float(v) * scale[u] for p, v, u in _WRK_LATENCY.findall(out)},
        'output': out,
    }
