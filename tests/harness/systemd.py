"""A stand-in for systemd where none runs (containers, this harness): a ``systemctl`` that keeps state.

Only what the gateway needs: ``daemon-reload``, ``is-enabled``, ``enable``, ``start``, ``stop``, ``is-active``.
It refuses what systemd refuses: enabling a unit without a unit file, starting a unit it has not loaded
(no ``daemon-reload`` since the file appeared). ``start`` runs ``ExecStartPre`` and then ``ExecStart`` as a
process of its own, like a ``Type=notify`` service; ``stop`` sends SIGTERM to it. Unit files are checked for
real with ``systemd-analyze verify`` (``FakeSystemd.verify``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from .common import HarnessError

_SCRIPT = textwrap.dedent('''\
    import json, os, shlex, signal, subprocess, sys, time
    units, state_file = os.environ['FAKE_SYSTEMD_UNITS'], os.environ['FAKE_SYSTEMD_STATE']
    state = json.load(open(state_file)) if os.path.exists(state_file) else {'enabled': [], 'loaded': {}, 'pids': {}, 'calls': []}
    command, args = sys.argv[1], sys.argv[2:]
    state['calls'].append([command] + args)
    code = 0

    def path(unit):
        return os.path.join(units, unit + '.service')

    def lines(text, key):
        return [l.split('=', 1)[1] for l in text.splitlines() if l.startswith(key + '=')]

    def words(line):
        return [w.replace('%%', '%').replace('$$', '$') for w in shlex.split(line)]

    def alive(pid):
        try:
            os.kill(pid, 0)
            return open('/proc/%d/stat' % pid).read().split()[2] != 'Z'
        except OSError:
            return False

    if command == 'daemon-reload':
        state['loaded'] = {f[:-8]: open(os.path.join(units, f)).read() for f in os.listdir(units) if f.endswith('.service')}
    elif command == 'is-enabled':
        if not os.path.exists(path(args[0])):
            sys.stderr.write('Failed to get unit file state for %s.service: No such file or directory\\n' % args[0]); code = 1
        else:
            enabled = args[0] in state['enabled']
            print('enabled' if enabled else 'disabled'); code = 0 if enabled else 1
    elif command == 'enable':
        if not os.path.exists(path(args[0])):
            sys.stderr.write('Failed to enable unit: Unit file %s.service does not exist.\\n' % args[0]); code = 1
        elif args[0] not in state['enabled']:
            state['enabled'].append(args[0])
    elif command == 'start':
        unit = args[0]
        if unit not in state['loaded']:
            sys.stderr.write('Failed to start %s.service: Unit %s.service not found.\\n' % (unit, unit)); code = 5
        elif not alive(state['pids'].get(unit, 0)):
            text = state['loaded'][unit]
            for pre in lines(text, 'ExecStartPre'):
                if subprocess.call(words(pre)) != 0:
                    sys.stderr.write('Job for %s.service failed because the control process exited with error code.\\n' % unit)
                    code = 1
            if not code:
                log = open(os.path.join(units, unit + '.log'), 'ab')
                proc = subprocess.Popen(words(lines(text, 'ExecStart')[0]), stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=log, start_new_session=True)
                state['pids'][unit] = proc.pid
    elif command == 'stop':
        pid = state['pids'].pop(args[0], 0)
        if alive(pid):
            os.kill(pid, signal.SIGTERM)
            for dummy in range(300):
                if not alive(pid):
                    break
                time.sleep(0.05)
    elif command == 'is-active':
        active = alive(state['pids'].get(args[0], 0))
        print('active' if active else 'inactive'); code = 0 if active else 3
    else:
        sys.stderr.write('fake systemctl: %s is not supported\\n' % command); code = 1
    json.dump(state, open(state_file, 'w'))
    sys.exit(code)
''')


@dataclass
class FakeSystemd:
    folder: Path

    def __post_init__(self):
        self.folder = Path(self.folder)
        self.bin = self.folder / 'bin'
        self.units = self.folder / 'units'
        self.state_file = self.folder / 'state.json'
        self.bin.mkdir(parents=True, exist_ok=True)
        self.units.mkdir(parents=True, exist_ok=True)
        script = self.bin / 'systemctl'
        script.write_text('#!%s\n%s' % (sys.executable, _SCRIPT))
        script.chmod(0o755)

    def env(self) -> dict:
        return {'PATH': '%s:%s:%s' % (self.bin, Path(sys.executable).parent, os.environ.get('PATH', '')),
                'FAKE_SYSTEMD_UNITS': str(self.units), 'FAKE_SYSTEMD_STATE': str(self.state_file)}

    @property
    def state(self) -> dict:
        return json.loads(self.state_file.read_text()) if self.state_file.exists() else {}

    def verify(self, unit: str):
        """Check a unit file with the real systemd-analyze (needs no running systemd)."""
        proc = subprocess.run(['systemd-analyze', 'verify', str(self.units / (unit + '.service'))],
                              capture_output=True, text=True, check=False, timeout=60)
        if proc.returncode != 0:
            raise HarnessError('systemd-analyze verify %s failed:\n%s%s' % (unit, proc.stdout, proc.stderr))
        return proc

    def stop_all(self):
        for unit in list(self.state.get('pids', {})):
            subprocess.run([str(self.bin / 'systemctl'), 'stop', unit], env=dict(os.environ, **self.env()), check=False)
