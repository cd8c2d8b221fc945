#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: gateway_routes
short_description: Keep the departments of the cross-department API gateway (HAProxy) and apply them live
version_added: 0.1.0
description:
  - Runs on the gateway host. Keeps the gateway's record of the departments it routes (C(departments.json) in
    O(path)) and derives from it the map files C(backends.map), C(callers.map), C(limits.map), C(periods.map)
    and the configuration fragment C(departments.cfg) (one backend per department, one stick table per
    rate-limit period in use).
  - O(state=present) adds or updates the given departments and keeps the others, so each provisioning run brings
    in its own department; with O(exclusive=true) the given list replaces the whole set. O(state=absent) removes
    the named departments.
  - The allow-list comes from each department's C(callers), the departments allowed to call it; a pair is listed
    once both departments are known. The rate limit of a department applies to its own calls, as a caller.
  - When the gateway runs (O(master_socket) answers), map changes are applied at once through the HAProxy runtime
    API (C(add map), C(set map), C(del map) on the current worker) and written to the files, since runtime edits
    vanish on reload. A change of C(departments.cfg) needs a reload, which M(federation.platform.gateway_service)
    does when the configuration differs from the one running.
  - Updates of the department set are serialized by a lock in O(path), so concurrent runs lose no department.
author:
  - Federation platform team (@federation)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Nothing is written and no runtime command is sent; the runtime commands that would be sent are returned.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
options:
  path:
    description: The gateway's folder (configuration, maps, state). Created with mode 0755 when missing.
    type: path
    required: true
  departments:
    description:
      - With O(state=present), the departments to add or update, each with C(name), C(backend), C(callers) and
        C(rate_limit).
      - C(backend) is where the department's n8n webhooks answer, as C(host:port) (plain HTTP, webhooks under
        C(/webhook)) or a URL C(http(s)://host[:port][/path]) (a URL without a path means C(/webhook)).
        C(/dept/<name>/<rest>) is forwarded to C(<path>/<rest>).
      - C(callers) lists the departments allowed to call this one; C(rate_limit) is C({requests, per_seconds}),
        default 60 per 60 seconds, and limits this department's own calls.
      - With O(state=absent), the departments to remove, by name (or as mappings with C(name)).
    type: list
    elements: raw
    required: true
  state:
    description: Whether the given departments are routed.
    type: str
    default: present
    choices: [present, absent]
  exclusive:
    description: With O(state=present), remove every department that is not in O(departments).
    type: bool
    default: false
  public_key:
    description:
      - The public key (PEM) the gateway verifies tokens with, written as C(gateway-public.pem) in O(path).
        HAProxy reads it at start, so a change needs a reload (reported in RV(config_changed)).
      - Left as it is when omitted.
    type: str
  master_socket:
    description:
      - The master CLI socket of the running gateway (HAProxy C(-S)). When it answers, map changes are applied
        at once; when it is absent or does not answer, only the files are written.
    type: path
'''

EXAMPLES = r'''
- name: Route finance, callable by hr, limited to 120 calls a minute
  federation.platform.gateway_routes:
    path: /etc/haproxy/federation
    master_socket: /etc/haproxy/federation/run/master.sock
    departments:
      - name: finance
        backend: http://127.0.0.1:5678/webhook
        callers: [hr]
        rate_limit: {requests: 120, per_seconds: 60}
  register: routes

- name: Stop routing a department
  federation.platform.gateway_routes:
    path: /etc/haproxy/federation
    master_socket: /etc/haproxy/federation/run/master.sock
    state: absent
    departments: [legal]
'''

RETURN = r'''
departments:
  description: Every department the gateway routes after the call.
  returned: always
  type: list
  elements: dict
  sample: [{name: finance, backend: "http://127.0.0.1:5678/webhook", callers: [hr], rate_limit: {requests: 120, per_seconds: 60}}]
files_changed:
  description: The files of O(path) that were (or in check mode would be) written.
  returned: always
  type: list
  elements: str
  sample: [callers.map, departments.cfg, departments.json]
config_changed:
  description: Whether C(departments.cfg) or the public key changed, so the gateway needs a reload.
  returned: always
  type: bool
runtime_commands:
  description: The runtime API commands sent to the running gateway (in check mode, the ones that would be sent).
  returned: always
  type: list
  elements: str
  sample: ["add map /etc/haproxy/federation/callers.map hr:finance 1"]
running_as_root:
  description: Whether the module ran as root on the gateway host, where HAProxy can drop its workers' privileges.
  returned: always
  type: bool
runtime:
  description: C(applied) when the running gateway was updated, C(not running) when only files were written.
  returned: always
  type: str
msg:
  description: What happened, in words.
  returned: always
  type: str
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.federation.platform.plugins.module_utils._gateway import (
    FRAGMENT_FILE, MAP_FILES, PUBLIC_KEY_FILE, STATE_FILE, FolderLock, GatewayError, Runtime, dump_state, load_state,
    merge_departments, normalize_department, parse_map, process_lock, read_text, render_fragment, render_maps, write_atomic)
from ansible_collections.federation.platform.plugins.module_utils._naming import department_name_error


def public_key_text(pem):
    text = pem.strip() + '\n'
    if not text.startswith('-----BEGIN PUBLIC KEY-----') or not text.rstrip().endswith('-----END PUBLIC KEY-----'):
        raise GatewayError('public_key must be a PEM public key (-----BEGIN PUBLIC KEY-----), as gateway_token returns it')
    return text


def wanted_input(module):
    if module.params['state'] == 'present':
        return [normalize_department(d) for d in module.params['departments']]
    names = []
    for item in module.params['departments']:
        name = item.get('name') if isinstance(item, dict) else item
        problem = department_name_error(name)
        if problem:
            raise GatewayError('Invalid department for the gateway: %s' % problem)
        names.append(name)
    return names


def apply_runtime(runtime, folder, files, check):
    """The runtime commands that bring the running worker's maps to ``files`` (run unless ``check``)."""
    commands = []
    for name in MAP_FILES:
        path = os.path.join(folder, name)
        loaded = runtime.show_map(path)
        if loaded is None:
            continue  # the running configuration does not use this map yet: the reload will load it
        for command in runtime.map_commands(path, loaded, parse_map(files[name])):
            commands.append(command)
            if not check:
                runtime.run_worker(command)
    return commands


def run(module):
    folder = module.params['path']
    check = module.check_mode
    given = wanted_input(module)
    # Every input is checked before anything is created.
    key = public_key_text(module.params['public_key']) if module.params['public_key'] is not None else None
    exists = os.path.isdir(folder)
    if not exists and module.params['state'] == 'absent':
        return dict(changed=False, departments=[], files_changed=[], config_changed=False, runtime_commands=[],
                    runtime='not running', running_as_root=os.geteuid() == 0, msg='gateway routes unchanged: %s holds no gateway' % folder)
    if not exists and not check:
        os.makedirs(folder, 0o755)
    lock = FolderLock(folder) if (exists or not check) else None
    if lock:
        lock.__enter__()
    try:
        current = load_state(folder)
        departments = merge_departments(current, given, module.params['state'], module.params['exclusive'])
        files = render_maps(departments)
        files[FRAGMENT_FILE] = render_fragment(departments)
        files[STATE_FILE] = dump_state(departments)
        names = list(MAP_FILES) + [FRAGMENT_FILE, STATE_FILE]   # the record last: it names what the rest holds
        if key is not None:
            files[PUBLIC_KEY_FILE] = key
            names.insert(0, PUBLIC_KEY_FILE)
        changed_files, diffs = [], []
        for name in names:
            before = read_text(os.path.join(folder, name))
            if before != files[name]:
                changed_files.append(name)
                diffs.append(dict(before=before or '', after=files[name], before_header=os.path.join(folder, name),
                                  after_header=os.path.join(folder, name)))
                if not check:
                    write_atomic(os.path.join(folder, name), files[name], 0o644)

        runtime_state, commands = 'not running', []
        runtime = Runtime(module.params['master_socket']) if module.params['master_socket'] else None
        if runtime and os.path.isdir(os.path.dirname(module.params['master_socket']) or '.'):
            # While another run starts or reloads the gateway its socket may not answer yet: wait for that run.
            with process_lock(module.params['master_socket']):
                if runtime.available():
                    runtime_state = 'applied'
                    commands = apply_runtime(runtime, folder, files, check)
    finally:
        if lock:
            lock.__exit__(None, None, None)

    changed = bool(changed_files or commands)
    names = [d['name'] for d in departments]
    result = dict(
        changed=changed,
        departments=departments,
        files_changed=changed_files,
        config_changed=bool({FRAGMENT_FILE, PUBLIC_KEY_FILE} & set(changed_files)),
        runtime_commands=commands,
        runtime=runtime_state,
        running_as_root=os.geteuid() == 0,
        msg='gateway routes %s: %s (%s)' % ('updated' if changed else 'unchanged', ', '.join(names) or 'no departments',
                                            'running gateway updated' if commands and not check else runtime_state),
    )
    if module._diff:
        result['diff'] = diffs
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            departments=dict(type='list', elements='raw', required=True),
            state=dict(type='str', default='present', choices=['present', 'absent']),
            exclusive=dict(type='bool', default=False),
            master_socket=dict(type='path'),
            public_key=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    try:
        result = run(module)
    except GatewayError as exc:
        module.fail_json(msg='Failed to update the routes of the gateway in %s: %s.' % (module.params['path'], exc))
    except (IOError, OSError) as exc:
        module.fail_json(msg='Failed to update the routes of the gateway in %s: %s. Check that the folder is '
                             'writable and the gateway socket reachable.' % (module.params['path'], exc))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
