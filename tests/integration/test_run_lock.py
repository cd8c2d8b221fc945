"""federation.platform.run_lock: a lock held by a whole playbook run, refused to other runs with the name of the
run that holds it, waited for, released, and freed the moment the run holding it dies (kill -9 included)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import textwrap
import time

from tests.harness.common import wait_for
from tests.helpers import REPO, VENV_BIN

MODULE = 'federation.platform.run_lock'


def holding_playbook(tmp_path, lock):
    """A run that takes the lock (twice: the second time changes nothing), waits for ``go``, releases it and
    waits for ``end``."""
    playbook = tmp_path / 'hold.yml'
    playbook.write_text(textwrap.dedent('''\
        - hosts: localhost
          gather_facts: false
          tasks:
            - {name: take, federation.platform.run_lock: {path: "%(lock)s", purpose: provision finance}}
            - {name: again, federation.platform.run_lock: {path: "%(lock)s"}, register: again}
            - {name: unchanged, ansible.builtin.assert: {that: [again is not changed]}}
            - {name: go, ansible.builtin.wait_for: {path: "%(dir)s/go", timeout: 120}}
            - {name: let go, federation.platform.run_lock: {path: "%(lock)s", state: released}}
            - {name: end, ansible.builtin.wait_for: {path: "%(dir)s/end", timeout: 120}}
        ''' % dict(lock=lock, dir=tmp_path)))
    return playbook


def start(runner, playbook):
    return subprocess.Popen([str(VENV_BIN / 'ansible-playbook'), str(playbook)], cwd=str(REPO), env=runner.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def held_by(lock, pid):
    try:
        return json.loads(lock.read_text()).get('pid') == pid
    except (OSError, ValueError):
        return False


def test_held_refused_naming_its_holder_waited_for_and_released(runner, tmp_path):
    lock = tmp_path / 'locks' / 'department-finance.lock'
    run = start(runner, holding_playbook(tmp_path, lock))
    try:
        wait_for(lambda: held_by(lock, run.pid), 60, 'the first run to hold the lock')
        refused = runner.module(MODULE, dict(path=str(lock), what="department 'finance'"))
        assert refused.get('failed'), refused
        assert refused['msg'].startswith("Failed to take department 'finance' on %s: run pid %d on %s, started "
                                         % (lock, run.pid, socket.gethostname())), refused['msg']
        assert '(provision finance) holds it' in refused['msg']
        assert refused['holder']['pid'] == run.pid
        # Check mode is refused the same way, and leaves the lock file as it was.
        text, mtime = lock.read_text(), lock.stat().st_mtime_ns
        checked = runner.module(MODULE, dict(path=str(lock), what="department 'finance'"), check=True)
        assert checked.get('failed') and '(provision finance) holds it' in checked['msg'], checked
        assert (lock.read_text(), lock.stat().st_mtime_ns) == (text, mtime)

        # A run that waits gets the lock once the first run lets go (which the first one does after 'go').
        waiter = subprocess.Popen([str(VENV_BIN / 'ansible'), 'localhost', '-m', MODULE, '-a',
                                   json.dumps(dict(path=str(lock), wait=60, purpose='second'))],
                                  cwd=str(REPO), env=runner.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(1)
        assert waiter.poll() is None, waiter.communicate()[0]
        (tmp_path / 'go').touch()
        out = waiter.communicate(timeout=60)[0]
        assert waiter.returncode == 0, out
        assert run.poll() is None, 'the first run is still going: it released the lock, it did not end'
        assert json.loads(lock.read_text())['purpose'] == 'second'
    finally:
        (tmp_path / 'go').touch()
        (tmp_path / 'end').touch()
        out = run.communicate(timeout=120)[0]
    assert run.returncode == 0, out


def test_check_mode_writes_no_lock_file(runner, tmp_path):
    lock = tmp_path / 'locks' / 'department-legal.lock'
    checked = runner.module(MODULE, dict(path=str(lock), what="department 'legal'"), check=True)
    assert not checked.get('failed') and checked['changed'] is False, checked
    assert not (tmp_path / 'locks').exists()


def test_a_killed_run_frees_its_lock_at_once(runner, tmp_path):
    lock = tmp_path / 'locks' / 'department-hr.lock'
    run = start(runner, holding_playbook(tmp_path, lock))
    wait_for(lambda: held_by(lock, run.pid), 60, 'the run to hold the lock')
    run.send_signal(signal.SIGKILL)
    run.wait()
    # No waiting asked for: the holder of a dead run lets go within a fraction of a second.
    taken = runner.module(MODULE, dict(path=str(lock), what="department 'hr'", purpose='after the crash'))
    assert not taken.get('failed'), taken
    assert taken['changed'] is False and taken['holder']['purpose'] == 'after the crash'
    (tmp_path / 'go').touch()
    (tmp_path / 'end').touch()
