#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: gateway_service
short_description: Run the cross-department API gateway as a master-worker HAProxy and hot-reload it
version_added: 0.1.0
description:
  - Runs on the gateway host. Starts HAProxy in master-worker mode (C(-W -D -S <master socket> -p <pidfile>)) with
    the given configuration files, and reloads it through the master CLI when the configuration differs from the
    one it runs. Needs no init system, so it works in a container as well as on a VPS.
  - A reload is seamless - the listening sockets pass from the old worker to the new one, idle keep-alive clients are
    answered once more before their connection closes (C(option idle-close-on-response) in the configuration), and
    stick-table counters pass on through the local peer.
  - The configuration is checked with C(haproxy -c) before any start or reload; a configuration that does not
    pass leaves the running gateway as it is.
  - With O(systemd_unit), systemd runs the same master-worker HAProxy from a unit of its own (written to
    O(systemd_dir), enabled), so the gateway comes back after a crash or a reboot; reloads still go through the
    master CLI. Without it the module starts HAProxy itself, which needs no init system (a container, the local default).
  - Whether a reload is due is decided by a checksum of O(config_files) and O(watch_files), recorded in O(state_file)
    after each successful start or reload.
author:
  - Federation platform team (@federation)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The diff shows the process state and the configuration checksum before and after.
options:
  state:
    description:
      - V(started) starts the gateway when it does not run and reloads it when its configuration changed.
      - V(reloaded) also reloads it when nothing changed.
      - V(stopped) stops it gently (the workers finish the requests in flight).
    type: str
    default: started
    choices: [started, reloaded, stopped]
  config_files:
    description: The configuration files, in the order HAProxy reads them.
    type: list
    elements: path
    required: true
  watch_files:
    description: Other files read at start only (such as the JWT verification key); a change of one causes a reload.
    type: list
    elements: path
    default: []
  pidfile:
    description: Where the master's process id is kept.
    type: path
    required: true
  master_socket:
    description: The master CLI socket (mode 0600).
    type: path
    required: true
  state_file:
    description: Where the checksum of the running configuration is recorded. Defaults to O(pidfile) with C(.loaded).
    type: path
  binary:
    description: The HAProxy program.
    type: str
    default: haproxy
  systemd_unit:
    description:
      - The name of a systemd unit (without C(.service)) to run the gateway under. The unit file is written from the
        other options, systemd reloads its units when it changed, and the unit is enabled.
      - Omitted, the module starts HAProxy itself.
    type: str
  systemd_dir:
    description: Where the unit file goes.
    type: path
    default: /etc/systemd/system
  timeout:
    description: Seconds to wait for a start, a reload or a stop.
    type: int
    default: 30
'''

EXAMPLES = r'''
- name: Run the gateway, reloading it when its configuration changed
  federation.platform.gateway_service:
    config_files:
      - /etc/haproxy/federation/haproxy.cfg
      - /etc/haproxy/federation/departments.cfg
    watch_files:
      - /etc/haproxy/federation/gateway-public.pem
    pidfile: /etc/haproxy/federation/run/haproxy.pid
    master_socket: /etc/haproxy/federation/run/master.sock

- name: Run the gateway under systemd, so it comes back after a reboot
  federation.platform.gateway_service:
    config_files:
      - /etc/haproxy/federation/haproxy.cfg
      - /etc/haproxy/federation/departments.cfg
    pidfile: /etc/haproxy/federation/run/haproxy.pid
    master_socket: /etc/haproxy/federation/run/master.sock
    systemd_unit: federation-gateway

- name: Stop the gateway
  federation.platform.gateway_service:
    state: stopped
    config_files: [/etc/haproxy/federation/haproxy.cfg]
    pidfile: /etc/haproxy/federation/run/haproxy.pid
    master_socket: /etc/haproxy/federation/run/master.sock
'''

RETURN = r'''
operation:
  description: What was done - C(started), C(reloaded), C(stopped) or C(none).
  returned: always
  type: str
  sample: reloaded
pid:
  description: The master's process id (C(null) when stopped).
  returned: always
  type: int
workers:
  description: The process ids of the current workers.
  returned: always
  type: list
  elements: int
reloads:
  description: How many times the master has reloaded since it started.
  returned: always
  type: int
unit_changed:
  description: With O(systemd_unit), whether the unit file was written (or enabled) by this call.
  returned: always
  type: bool
checksum:
  description: The checksum of the configuration the gateway runs.
  returned: always
  type: str
msg:
  description: What happened, in words.
  returned: always
  type: str
'''

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.federation.platform.plugins.module_utils._gateway import (
    GatewayError, Process, bind_addresses, checksum, process_lock, read_text, taken, write_atomic)


def run(module):
    """Start, reload or stop the gateway, one run at a time: concurrent runs that each start or reload it
    wait for one another (a run that found the gateway half started would reach a socket that does not answer)."""
    folder = os.path.dirname(module.params['master_socket'])
    if folder and not os.path.isdir(folder):
        if module.check_mode:
            return run_unlocked(module)
        os.makedirs(folder, 0o700)  # the master socket's folder: the socket's mode is not enough on every system
    with process_lock(module.params['master_socket']):
        return run_unlocked(module)


def run_unlocked(module):
    params = module.params
    binary = params['binary'] if os.path.isabs(params['binary']) else module.get_bin_path(params['binary'], required=True)
    unit = params['systemd_unit']
    if unit is not None and not re.match(r'^[A-Za-z0-9][A-Za-z0-9@_.-]{0,200}$', unit) or (unit or '').endswith('.service'):
        raise GatewayError('systemd_unit %r is not a unit name: use letters, digits and @ _ . - without .service' % unit)
    systemctl = module.get_bin_path('systemctl', required=True) if unit else None
    process = Process(binary, params['config_files'], params['pidfile'], params['master_socket'], float(params['timeout']),
                      systemd_unit=unit, systemctl=systemctl)
    state_file = params['state_file'] or params['pidfile'] + '.loaded'
    unit_changed = False
    if unit and params['state'] != 'stopped':
        unit_path = os.path.join(params['systemd_dir'], unit + '.service')
        unit_text = process.unit_text()
        written = read_text(unit_path) != unit_text
        if written and not module.check_mode:
            write_atomic(unit_path, unit_text, 0o644)
            process.daemon_reload()
        enable = not process.enabled()
        if enable and not module.check_mode:
            process.enable()
        unit_changed = written or enable
    wanted_sum = checksum(params['config_files'] + params['watch_files'])
    pid = process.running()
    loaded_sum = (read_text(state_file) or '').strip() if pid else None

    if params['state'] == 'stopped':
        operation = 'stopped' if pid else 'none'
        if pid and not module.check_mode:
            process.stop()
            if os.path.exists(state_file):
                os.unlink(state_file)
        return dict(changed=bool(pid), operation=operation, pid=None, workers=[], reloads=0, checksum=None, unit_changed=False,
                    before=dict(running=bool(pid), checksum=loaded_sum), after=dict(running=False, checksum=None))

    if not pid:
        operation = 'started'
    elif params['state'] == 'reloaded' or loaded_sum != wanted_sum:
        operation = 'reloaded'
    else:
        operation = 'none'

    if operation == 'started':
        # Before anything starts: a port another process listens on (another gateway, say) would be shared.
        busy = ['%s:%d' % pair for pair in bind_addresses(read_text(path) or '' for path in params['config_files'])
                if taken(*pair)]
        if busy:
            raise GatewayError('cannot start the gateway: %s already in use by another process; stop it or give the '
                               'gateway other ports (api_gateway_port, api_gateway_peer_port)' % ', '.join(busy))

    info = None
    if operation != 'none' and not module.check_mode:
        for path in (params['pidfile'], params['master_socket'], state_file):
            folder = os.path.dirname(path)
            if folder and not os.path.isdir(folder):
                os.makedirs(folder, 0o700)  # the master socket's folder: the socket's mode is not enough on every system
        process.check()
        info = process.start() if operation == 'started' else process.reload()
        write_atomic(state_file, wanted_sum + '\n', 0o644)
    elif pid:
        info = process.runtime.processes()
    info = info or {}
    return dict(changed=operation != 'none' or unit_changed, operation=operation, pid=info.get('master') or pid,
                workers=info.get('workers', []), reloads=info.get('reloads') or 0, checksum=wanted_sum, unit_changed=unit_changed,
                before=dict(running=bool(pid), checksum=loaded_sum), after=dict(running=True, checksum=wanted_sum))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type='str', default='started', choices=['started', 'reloaded', 'stopped']),
            config_files=dict(type='list', elements='path', required=True),
            watch_files=dict(type='list', elements='path', default=[]),
            pidfile=dict(type='path', required=True),
            master_socket=dict(type='path', required=True),
            state_file=dict(type='path'),
            binary=dict(type='str', default='haproxy'),
            timeout=dict(type='int', default=30),
            systemd_unit=dict(type='str'),
            systemd_dir=dict(type='path', default='/etc/systemd/system'),
        ),
        supports_check_mode=True,
    )
    try:
        result = run(module)
    except GatewayError as exc:
        module.fail_json(msg='Failed to %s the gateway (%s): %s. The running gateway, if any, is unchanged.'
                             % ('stop' if module.params['state'] == 'stopped' else 'start or reload',
                                ', '.join(module.params['config_files']), exc))
    except (IOError, OSError) as exc:
        module.fail_json(msg='Failed to %s the gateway (%s): %s.' % ({'started': 'start', 'reloaded': 'reload', 'stopped': 'stop'}[
            module.params['state']], module.params['pidfile'], exc))
    before, after = result.pop('before'), result.pop('after')
    if module._diff:
        result['diff'] = dict(before=before, after=after)
    result['msg'] = {'started': 'gateway started', 'reloaded': 'gateway reloaded', 'stopped': 'gateway stopped',
                     'none': 'gateway %s' % ('runs its current configuration' if result['pid'] else 'not running')}[result['operation']]
    module.exit_json(**result)


if __name__ == '__main__':
    main()
