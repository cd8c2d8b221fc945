"""Provisioning runs side by side on the local default: ten departments started at the same moment all
become active behind one gateway, each on a port of its own, and a second run started for one of them at
that moment stops at once, before the registry, naming the run that holds the department.

Ten n8n containers on two cores is the heaviest test of the suite: it runs once, and prints its wall time
and the peak memory it saw (never asserted: speed is measured in bench/).
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time

import requests

from tests.helpers import REPO, VENV_BIN, query, recap

DEPARTMENTS = ['accounts', 'billing', 'claims', 'design', 'events', 'facilities', 'grants', 'helpdesk', 'intake', 'jobs']
TWICE = 'claims'


class MemorySampler(threading.Thread):
    """The peak memory of the run's containers (``docker stats``) and of the machine (MemTotal - MemAvailable)."""

    def __init__(self, prefix: str):
        threading.Thread.__init__(self, daemon=True)
        self.prefix = prefix
        self.done = threading.Event()
        self.baseline = self.host_used()
        self.peak_host = self.baseline
        self.peak_containers = 0.0
        self.peak_count = 0

    @staticmethod
    def host_used() -> float:
        info = dict(line.split(':', 1) for line in open('/proc/meminfo'))
        return (int(info['MemTotal'].split()[0]) - int(info['MemAvailable'].split()[0])) / 1024.0

    def containers(self):
        out = subprocess.run(['docker', 'stats', '--no-stream', '--format', '{{.Name}} {{.MemUsage}}'],
                             capture_output=True, text=True, check=False).stdout
        total, count = 0.0, 0
        units = {'B': 1 / 1048576.0, 'KiB': 1 / 1024.0, 'MiB': 1.0, 'GiB': 1024.0}
        for line in out.splitlines():
            match = re.match(r'^(\S+) ([0-9.]+)(B|KiB|MiB|GiB) /', line)
            if match and match.group(1).startswith(self.prefix + '-'):
                total += float(match.group(2)) * units[match.group(3)]
                count += 1
        return total, count

    def run(self):
        while not self.done.is_set():
            self.peak_host = max(self.peak_host, self.host_used())
            total, count = self.containers()
            if total > self.peak_containers:
                self.peak_containers, self.peak_count = total, count
            self.done.wait(1.0)


def start(site, dept, log):
    # Ten n8n boot at once on two cores: each may need several minutes to answer, more than the default wait
    # (180 s, right for one run at a time), and the retries' own cost stretches under that load.
    return subprocess.Popen([str(VENV_BIN / 'ansible-playbook'), 'provision.yml', '-e', 'dept=%s' % dept,
                             '-e', 'aio_instance_health_timeout=900'], cwd=str(REPO),
                            env=site.runner.env(site.env), stdout=log, stderr=subprocess.STDOUT, text=True)


def test_ten_departments_at_once_and_a_second_run_for_one_of_them(site, tmp_path):
    sampler = MemorySampler(site.runner.docker_prefix)
    sampler.start()
    began = time.monotonic()
    runs = []
    for dept in DEPARTMENTS + [TWICE]:
        log = open(tmp_path / ('%s-%d.log' % (dept, len(runs))), 'w+')
        runs.append(dict(dept=dept, log=log, proc=start(site, dept, log)))
    finished = []
    while len(finished) < len(runs):
        for run in runs:
            if run not in finished and run['proc'].poll() is not None:
                run['seconds'] = time.monotonic() - began
                finished.append(run)
        assert time.monotonic() - began < 3000, 'provisioning runs still going after 50 minutes'
        time.sleep(0.5)
    wall = time.monotonic() - began
    sampler.done.set()
    sampler.join()
    for run in runs:
        run['log'].seek(0)
        run['output'] = run['log'].read()
        run['log'].close()
        site.outputs.append(run['output'])
    print('\n%d provisioning runs side by side (%d departments + a second run for %s): wall %.0f s; peak memory of '
          'the run\'s %d containers %.0f MiB; machine %.0f MiB used at the peak (%.0f MiB before); slowest run %.0f s, '
          'fastest %.0f s' % (len(runs), len(DEPARTMENTS), TWICE, wall, sampler.peak_count, sampler.peak_containers,
                              sampler.peak_host, sampler.baseline, max(r['seconds'] for r in runs), min(r['seconds'] for r in runs)))

    # The two runs for one department: one provisioned it, the other stopped at once naming that one.
    pair = [run for run in runs if run['dept'] == TWICE]
    winners = [run for run in pair if run['proc'].returncode == 0]
    losers = [run for run in pair if run['proc'].returncode != 0]
    assert len(winners) == 1 and len(losers) == 1, [r['output'][-3000:] for r in pair]
    winner, loser = winners[0], losers[0]
    said = re.sub(r'\s+', ' ', loser['output']).replace("''", "'")   # the error as the YAML callback wraps it
    assert ("Failed to take department '%s'" % TWICE) in said, said[-3000:]
    assert re.search(r'run pid %d on \S+, started \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(provision %s\) holds it'
                     % (winner['proc'].pid, TWICE), said), said[-3000:]
    # It stopped before the registry (which would have recorded it failed) and before anything else ran,
    # while the other run still worked.
    assert 'Register the department' not in loser['output'] and 'Registry' not in loser['output']
    assert finished.index(loser) < finished.index(winner)

    # Every department provisioned, active, on a port of its own, routed by one gateway.
    for run in runs:
        if run is not loser:
            assert run['proc'].returncode == 0, (run['dept'], run['output'][-6000:])
            assert recap(run['output'])['failed'] == 0
    states = dict(query(site.db, 'SELECT name, state FROM federation_control.departments'))
    assert states == {dept: 'active' for dept in DEPARTMENTS}
    ports = [site.container(dept)['HostConfig']['PortBindings']['5678/tcp'][0]['HostPort'] for dept in DEPARTMENTS]
    assert len(set(ports)) == len(DEPARTMENTS), ports
    assert all(site.container(dept)['State']['Running'] for dept in DEPARTMENTS)
    routed = json.loads((site.home / 'gateway' / 'departments.json').read_text())['departments']
    assert sorted(d['name'] for d in routed) == sorted(DEPARTMENTS)
    # Each department's token is accepted by the gateway (signed by the one platform key every run used).
    for dept in DEPARTMENTS:
        answer = requests.get(site.gateway_url + '/dept/%s/nothing-here' % dept, timeout=15,
                              headers={'Authorization': 'Bearer ' + site.secrets(dept)['gateway_token']})
        # no department lists itself among its callers: 403 from the allow-list, after every token check passed
        assert answer.status_code == 403, (dept, answer.text)
