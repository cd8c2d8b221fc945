"""Cold provision and re-run of one department on the local default, in seconds per phase.

    .venv/bin/python bench/provision_local.py [--dept finance] [--keep]

Runs with a FEDERATION_HOME, Docker prefix and ports of its own, so it never touches the machine's
own local default; removes what it made unless --keep. Images must exist (scripts/setup builds
them; their build is measured by playbooks/build_images.yml itself). Phases are the roles of the
provisioning run, from the role timings Ansible prints (profile_roles). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import time
from collections import OrderedDict

from _local import LocalDefault, phases, report

from tests.harness.docker_objects import build_images


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--dept', default='finance')
    parser.add_argument('--keep', action='store_true', help='leave the containers and the home folder')
    args = parser.parse_args()

    site = LocalDefault()
    results = OrderedDict()
    try:
        started = time.monotonic()
        build_images()
        results['images present (cached build check)'] = time.monotonic() - started
        for label in ('cold provision', 're-run'):
            seconds, output = site.playbook('provision.yml', '-e', 'dept=%s' % args.dept, what=label)
            results[label] = seconds
            for role, role_seconds in phases(output).items():
                results['  %s: %s' % (label, role)] = role_seconds
    finally:
        if not args.keep:
            site.remove()
    report(results)


if __name__ == '__main__':
    main()
