# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""Waiting for a container's service to answer while watching the container itself.

A container that exits or restarts while its service is awaited will not answer: the wait ends at once
with the exit code and the last lines of its log instead of running out its time. The Docker calls are
injected (``inspect(name)`` -> the container's inspect document or None, ``logs(name, lines)`` -> text) so
that the loop is tested without an engine; the module passes community.docker's client.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
from urllib.parse import quote

from ansible.module_utils.urls import ConnectionError as UrlConnectionError, open_url


class ContainerFailed(Exception):
    """The container exited, restarted or disappeared while its service was awaited."""

    def __init__(self, message, state):
        super(ContainerFailed, self).__init__(message)
        self.state = state


class WaitTimedOut(Exception):
    def __init__(self, message, last_answer):
        super(WaitTimedOut, self).__init__(message)
        self.last_answer = last_answer


def demux_logs(data):
    """The text of a log read from the Engine API without a TTY: frames of an 8-byte header (stream,
    0, 0, 0, big-endian length) and a payload. A TTY container's log is the raw text itself."""
    if not data:
        return ''
    if data[:1] not in (b'\x00', b'\x01', b'\x02') or data[1:4] != b'\x00\x00\x00':
        return data.decode('utf-8', 'replace')
    out, pos = [], 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos + 4:pos + 8], 'big')
        out.append(data[pos + 8:pos + 8 + size])
        pos += 8 + size
    return b''.join(out).decode('utf-8', 'replace')


def probe(url, timeout=5.0, want_json=True):
    """One look at ``url``: (ready, what was seen), never an exception."""
    try:
        with open_url(url, timeout=timeout, follow_redirects='none') as resp:
            body = resp.read()
            if resp.status != 200:
                return False, 'HTTP %d' % resp.status
            if want_json:
                try:
                    json.loads(body)
                except ValueError:
                    return False, 'HTTP 200 without JSON (still starting up)'
            return True, 'HTTP 200'
    except urllib.error.HTTPError as exc:
        return False, 'HTTP %d' % exc.code
    except (urllib.error.URLError, UrlConnectionError, OSError, ValueError) as exc:
        reason = getattr(exc, 'reason', exc)
        return False, 'no HTTP answer (%s)' % reason


def health(state):
    """Ready by the image's own health check: (healthy, what was seen) from a container's State."""
    status = (state.get('Health') or {}).get('Status')
    if status is None:
        return False, 'the image has no health check: give a URL to probe'
    if status == 'healthy':
        return True, 'healthy'
    log = (state.get('Health') or {}).get('Log') or []
    output = (log[-1].get('Output') or '').strip()[-300:] if log else ''
    return False, 'health %s%s' % (status, (' (%s)' % output) if output else '')


def describe_state(state, restarts=0):
    """A few words on a container's State: 'exited with code 9 and was restarted 3 times'."""
    status = state.get('Status') or 'unknown'
    if status in ('exited', 'dead', 'restarting') or restarts:
        words = 'exited with code %s' % state.get('ExitCode')
        if restarts:
            words += ' and was restarted %d time%s' % (restarts, '' if restarts == 1 else 's')
        if status == 'restarting':
            words += ', restarting again'
    else:
        words = 'is %s' % status
    if state.get('OOMKilled'):
        words += ', killed for running out of memory'
    if state.get('Error'):
        words += ' (%s)' % state['Error']
    return words


def wait_ready(name, url, inspect, logs, timeout, interval=0.5, want_json=True, log_lines=25,
               clock=time.monotonic, sleep=time.sleep, probe_url=probe, last_exit_code=None):
    """Probe ``url`` every ``interval`` seconds until it is ready (without ``url``: until the image's health
    check says healthy); between probes read the container.

    Returns (seconds waited, probes made). Raises ContainerFailed as soon as the container is gone, not
    running, or has restarted since the wait began (its message carries the log's last lines), and
    WaitTimedOut after ``timeout`` seconds of a running container that does not answer."""
    started = clock()
    began = time.time() - 1
    restarts = None
    probes = 0
    last = 'no answer yet'
    while True:
        document = inspect(name)
        if document is None:
            raise ContainerFailed('it does not exist (removed while it was awaited)', {})
        state = document.get('State') or {}
        count = int(document.get('RestartCount') or 0)
        if restarts is None:
            restarts = count
        if state.get('Status') != 'running' or state.get('Restarting') or count > restarts:
            if count > restarts and state.get('Status') == 'running' and last_exit_code is not None:
                # Restarted and running again: its State says exit code 0; the engine's events say what it was.
                code = last_exit_code(name, began)
                if code is not None:
                    state = dict(state, ExitCode=code)
            words = describe_state(state, count - restarts)
            tail = logs(name, log_lines).rstrip()
            raise ContainerFailed('it %s. The last lines of its log:\n%s' % (words, tail or '(empty)'), state)
        if url:
            ready, last = probe_url(url, timeout=min(5.0, max(1.0, interval * 4)), want_json=want_json)
        else:
            ready, last = health(state)
        probes += 1
        if ready:
            return round(clock() - started, 1), probes
        if clock() - started >= timeout:
            raise WaitTimedOut('it runs, but %s gave no ready answer; the last one: %s'
                               % (url or 'its health check', last), last)
        sleep(interval)


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path, timeout):
        super(_UnixHTTPConnection, self).__init__('localhost', timeout=timeout)
        self.socket_path = socket_path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class DockerEngine(object):
    """The two reads the wait needs from the Docker Engine API, over its unix socket (the Docker host's own,
    where the module runs): a container's inspect document and the tail of its log."""

    def __init__(self, socket_path='/var/run/docker.sock', timeout=10):
        self.socket_path = socket_path
        self.timeout = timeout

    def _get(self, path):
        connection = _UnixHTTPConnection(self.socket_path, self.timeout)
        try:
            connection.request('GET', path)
            resp = connection.getresponse()
            return resp.status, resp.read()
        finally:
            connection.close()

    def inspect(self, name):
        status, body = self._get('/containers/%s/json' % quote(name, safe=''))
        if status == 404:
            return None
        if status != 200:
            raise OSError('the Docker engine answered HTTP %d: %s' % (status, body[:300].decode('utf-8', 'replace')))
        return json.loads(body)

    def last_exit_code(self, name, since):
        """The exit code of the container's last 'die' event since ``since`` (Unix time), or None: what a container
        that was restarted and runs again exited with (its State only keeps the current run's)."""
        filters = quote(json.dumps({'container': [name], 'event': ['die']}), safe='')
        status, body = self._get('/events?since=%d&until=%d&filters=%s' % (int(since), int(time.time()) + 1, filters))
        if status != 200:
            return None
        code = None
        for line in body.decode('utf-8', 'replace').splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            found = ((event.get('Actor') or {}).get('Attributes') or {}).get('exitCode')
            if found is not None and str(found).lstrip('-').isdigit():
                code = int(found)
        return code

    def logs(self, name, lines):
        status, body = self._get('/containers/%s/logs?stdout=1&stderr=1&tail=%d' % (quote(name, safe=''), int(lines)))
        if status != 200:
            return '(its log could not be read: HTTP %d)' % status
        return demux_logs(body)
