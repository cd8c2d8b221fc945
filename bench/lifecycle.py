"""status.yml and deprovision.yml on the local default, in seconds per run and per phase.

    .venv/bin/python bench/lifecycle.py [--departments 2] [--keep]

Provisions the departments (bench1, bench2, ...; not measured here: see bench/provision_local.py), then times
status.yml, deprovision.yml in check mode, deprovision.yml of the first department (with its roles from the role
timings Ansible prints), deprovision.yml again (nothing left), and status.yml once more. Runs with a
FEDERATION_HOME, Docker prefix and ports of its own, and removes what it made unless --keep. Nothing is asserted.
"""

from __future__ import annotations

import argparse
from collections import OrderedDict

from _local import LocalDefault, phases, report

from tests.harness.docker_objects import build_images


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--departments', type=int, default=2)
    parser.add_argument('--keep', action='store_true', help='leave the containers and the home folder')
    args = parser.parse_args()

    site = LocalDefault()
    departments = ['bench%d' % (i + 1) for i in range(args.departments)]
    results = OrderedDict()
    try:
        build_images()
        for dept in departments:
            site.playbook('provision.yml', '-e', 'dept=%s' % dept, what='provisioning %s' % dept)

        results['status.yml, %d departments healthy' % len(departments)] = site.playbook('status.yml')[0]
        results['deprovision.yml --check'] = site.playbook('deprovision.yml', '-e', 'dept=bench1', '--check')[0]
        seconds, output = site.playbook('deprovision.yml', '-e', 'dept=bench1')
        results['deprovision.yml'] = seconds
        for role, role_seconds in phases(output).items():
            results['  deprovision: %s' % role] = role_seconds
        results['deprovision.yml again (nothing left)'] = site.playbook('deprovision.yml', '-e', 'dept=bench1')[0]
        results['status.yml, one deleted'] = site.playbook('status.yml')[0]
    finally:
        if not args.keep:
            site.remove()
    report(results)


if __name__ == '__main__':
    main()
