#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: run_lock
short_description: Hold a lock for the rest of a playbook run, so concurrent runs do not interleave
version_added: 0.1.0
description:
  - Takes an exclusive lock (C(flock)) on a file on the controller and keeps it until the playbook run that
    took it ends, or until the run releases it with O(state=released). A small detached holder process
    keeps the lock while the C(ansible-playbook) process of the run lives. A run that crashes or is killed
    frees its locks within a fraction of a second, and no lock file is ever left to clean by hand.
  - The lock file names the run that holds it (pid, host, start time, purpose); a run that finds the lock
    taken waits up to O(wait) seconds, then fails with a message naming that run.
  - Taking a lock the run already holds changes nothing, and a lock never counts as a change.
  - In check mode nothing is written, not even the lock file. The module only makes sure no other run holds
    the lock (a check run reads state that such a run may be changing), waiting and failing as above.
author:
  - Federation platform team (@federation)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
options:
  path:
    description:
      - The lock file on the controller (its folder is created, mode 0700, when missing).
    type: path
    required: true
  state:
    description:
      - V(held) takes the lock for this run; V(released) lets go of it (nothing happens when this run does
        not hold it).
    type: str
    choices: [held, released]
    default: held
  wait:
    description:
      - Seconds to wait for another run to let go. V(0) fails at once. A holder whose run has ended is
        always waited for (it lets go within a fraction of a second).
    type: int
    default: 0
  max_seconds:
    description:
      - When the module finds no C(ansible-playbook) process of its run to watch, the longest the lock is held
        unless released first (V(0) for no limit).
    type: int
    default: 3600
  purpose:
    description:
      - What the run does while it holds the lock, shown to the runs that find it taken.
    type: str
    default: ''
  what:
    description:
      - What the lock protects, for the error message (for example V(department 'finance')).
    type: str
    default: the lock
notes:
  - Runs on the controller, with the run's own C(ansible-playbook) process among the module's ancestors
    (connection local). Without one, the lock is held until released, at most O(max_seconds).
  - Only runs that share the lock file (one controller, one C(FEDERATION_HOME)) are kept apart.
'''

EXAMPLES = r'''
- name: Hold the department for this run, or stop naming the run that holds it
  federation.platform.run_lock:
    path: "{{ federation_home }}/locks/department-finance.lock"
    purpose: provision finance
    what: department 'finance'

- name: One run at a time chooses ports on the Docker host
  federation.platform.run_lock:
    path: "{{ federation_home }}/locks/docker-host.lock"
    wait: 600
    purpose: choose a port for finance

- name: Let the others in
  federation.platform.run_lock:
    path: "{{ federation_home }}/locks/docker-host.lock"
    state: released
'''

RETURN = r'''
released:
  description: With O(state=released), whether this run held the lock and let go of it.
  returned: when O(state=released)
  type: bool
holder:
  description: The run that holds the lock now (after V(released), the one that held it).
  returned: always
  type: dict
  sample: {pid: 4242, host: controller-1, started: "2026-12-05T12:00:00Z", purpose: provision finance}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.federation.platform.plugins.module_utils._run_lock import LockBusy, acquire, probe, read_holder, release


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            state=dict(type='str', default='held', choices=['held', 'released']),
            wait=dict(type='int', default=0),
            max_seconds=dict(type='int', default=3600),
            purpose=dict(type='str', default=''),
            what=dict(type='str', default='the lock'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params['wait'] < 0:
        module.fail_json(msg="Failed to take %s: wait is %d; give 0 or more seconds." % (params['what'], params['wait']))
    try:
        if params['state'] == 'released':
            holder = read_holder(params['path'])
            released = release(params['path'])
            module.exit_json(changed=False, released=released, holder={k: holder.get(k) for k in ('pid', 'host', 'started', 'purpose')},
                             msg='%s released' % params['what'] if released else '%s was not held by this run' % params['what'])
        if module.check_mode:
            # Check mode writes nothing, not even the lock file: it only makes sure no other run holds the lock.
            holder = probe(params['path'], wait=params['wait'])
            module.exit_json(changed=False, holder={k: holder.get(k) for k in ('pid', 'host', 'started', 'purpose')},
                             msg='%s is free (check mode takes no lock)' % params['what'])
        dummy, holder = acquire(params['path'], params['purpose'], wait=params['wait'], max_seconds=params['max_seconds'])
    except LockBusy as exc:
        module.fail_json(msg='Failed to take %s on %s: %s holds it. Wait for that run to finish (or stop it: a run that '
                             'ends, even killed, lets go at once), then run again.' % (params['what'], params['path'], exc),
                         holder={k: exc.holder.get(k) for k in ('pid', 'host', 'started', 'purpose')})
    except (IOError, OSError) as exc:
        module.fail_json(msg='Failed to take %s on %s: %s. Check that the folder is writable.' % (params['what'], params['path'], exc))
    module.exit_json(changed=False, holder={k: holder.get(k) for k in ('pid', 'host', 'started', 'purpose')},
                     msg='%s held by this run' % params['what'])


if __name__ == '__main__':
    main()
