#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: container_ready
short_description: Wait until a department's container answers, and stop at once when it exits or restarts
version_added: 0.2.0
description:
  - Runs on the Docker host of the container. Probes O(url) until it answers HTTP 200 (with a JSON body when
    O(json) is true), and between two probes reads the container from the Docker engine.
  - When the container is gone, is not running, or restarted since the wait began, the module fails at once with the
    department, the container, its exit code and the last O(log_lines) lines of its log, instead of waiting until
    O(timeout) for a service that cannot answer.
  - Values given in O(hide) never appear in the result, the log lines included.
author:
  - Federation platform team (@federation)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: It only reads, in check mode as otherwise; a container that does not exist fails as it would otherwise.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
options:
  name:
    description: The container's name.
    type: str
    required: true
  url:
    description:
      - The address to probe, as the Docker host reaches it (for n8n, C(/rest/settings) on its published port).
      - Without it, ready means the image's own health check reports the container C(healthy) (a container
        that publishes no port, such as a voice bridge).
    type: str
  department:
    description: The department the container belongs to, named in the errors.
    type: str
    required: true
  timeout:
    description: Seconds a running container may take to answer.
    type: int
    default: 180
  interval:
    description: Seconds between two looks.
    type: float
    default: 0.5
  json:
    description: Ready means a JSON body with the HTTP 200 (n8n answers an HTML page while it starts up).
    type: bool
    default: true
  log_lines:
    description: How many of the log's last lines an error carries.
    type: int
    default: 25
  docker_socket:
    description: The Docker engine's unix socket on the host.
    type: path
    default: /var/run/docker.sock
  hide:
    description: Values (the container's secrets) replaced by C(********) wherever they would appear in the result.
    type: list
    elements: str
    default: []
'''

EXAMPLES = r'''
- name: Wait until finance's n8n answers, failing at once if its container crashes
  federation.platform.container_ready:
    name: federation-finance-n8n
    department: finance
    url: http://127.0.0.1:5801/rest/settings
    timeout: 180

- name: Wait until finance's voice bridge reports healthy (its image's health check)
  federation.platform.container_ready:
    name: federation-finance-voice
    department: finance
    timeout: 120
'''

RETURN = r'''
seconds:
  description: How long the wait took.
  type: float
  returned: success
  sample: 14.5
probes:
  description: How many probes were made.
  type: int
  returned: success
  sample: 29
container_state:
  description: The container's Docker state when it failed (Status, ExitCode, OOMKilled, Error, ...).
  type: dict
  returned: failure, when the container stopped or restarted
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.federation.platform.plugins.module_utils._container_wait import (
    ContainerFailed, DockerEngine, WaitTimedOut, wait_ready)


def hidden(text, values):
    for value in values:
        if value:
            text = text.replace(value, '********')
    return text


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            url=dict(type='str'),
            department=dict(type='str', required=True),
            timeout=dict(type='int', default=180),
            interval=dict(type='float', default=0.5),
            json=dict(type='bool', default=True),
            log_lines=dict(type='int', default=25),
            docker_socket=dict(type='path', default='/var/run/docker.sock'),
            hide=dict(type='list', elements='str', default=[], no_log=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    engine = DockerEngine(p['docker_socket'])
    where = "container '%s' of department '%s'" % (p['name'], p['department'])
    try:
        seconds, probes = wait_ready(p['name'], p['url'], engine.inspect, engine.logs, timeout=p['timeout'],
                                     interval=p['interval'], want_json=p['json'], log_lines=p['log_lines'],
                                     last_exit_code=engine.last_exit_code)
    except ContainerFailed as exc:
        module.fail_json(msg=hidden('Failed to start the %s: %s\nFix what the log says and run again: the next run '
                                    'picks up where this one stopped.' % (where, exc), p['hide']),
                         container_state=exc.state)
    except WaitTimedOut as exc:
        module.fail_json(msg=hidden('Failed to see the %s ready within %d s: %s. Read its log (docker logs %s); raise '
                                    'the timeout if it is only slow to start.' % (where, p['timeout'], exc, p['name']),
                                    p['hide']))
    except (OSError, ValueError) as exc:
        module.fail_json(msg="Failed to read the %s from the Docker engine at %s: %s. Check that the engine runs."
                         % (where, p['docker_socket'], exc))
    module.exit_json(changed=False, seconds=seconds, probes=probes)


if __name__ == '__main__':
    main()
