"""What a person sees of a run with the project's ansible.cfg: one timing line per task, and the recaps of
tasks and roles at the end."""

from __future__ import annotations

import os
import re
import subprocess

from tests.helpers import REPO, VENV_BIN

TIMING = re.compile(r'^\w+ \d{2} \w+ \d{4} +\d{2}:\d{2}:\d{2} [+-]\d{4} \(\d+:\d{2}:\d{2}\.\d+\) +\d+:\d{2}:\d{2}\.\d+ \**\s*$')


def test_each_task_prints_its_timing_line_once(tmp_path):
    playbook = tmp_path / 'three.yml'
    playbook.write_text('- hosts: localhost\n  gather_facts: false\n  tasks:\n'
                        + ''.join('    - name: Step %d\n      ansible.builtin.debug:\n        msg: "%d"\n' % (n, n)
                                  for n in range(3)))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'), ANSIBLE_NOCOLOR='1')
    proc = subprocess.run([str(VENV_BIN / 'ansible-playbook'), str(playbook)], cwd=str(REPO), env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    timing = [n for n, line in enumerate(lines) if TIMING.match(line)]
    # One after each task banner, and the recaps' own.
    for n, line in enumerate(lines):
        if line.startswith('TASK [Step'):
            assert n + 1 in timing, '\n'.join(lines[n:n + 4])
            assert n + 2 not in timing, '\n'.join(lines[n:n + 4])
    assert len([n for n in timing if not lines[n - 1].startswith(('TASK [', 'PLAY RECAP', 'ROLES RECAP'))]) <= 2, proc.stdout
    assert 'ROLES RECAP' in proc.stdout
