"""The AIO image as built on this machine: n8n starts in it as the image's own user, and the wait that
provisioning uses reports a container that crashes at once, with its exit code and log, instead of waiting."""

from __future__ import annotations

import time

import pytest

from ansible_collections.federation.platform.plugins.module_utils._container_wait import (
    ContainerFailed, DockerEngine, wait_ready)
from tests.harness.common import free_port
from tests.harness.docker_objects import docker, inspect


def run_aio(image, prefix, name, *options):
    port = free_port()
    docker('run', '-d', '--name', name, '--label', 'federation.prefix=%s' % prefix,
           '-p', '127.0.0.1:%d:5678' % port, *options, image)
    return 'http://127.0.0.1:%d/rest/settings' % port


def test_n8n_starts_in_the_aio_image_as_the_images_user(images, prefix):
    assert inspect(images['aio'])['Config']['User'] == 'node'
    name = '%s-image' % prefix
    # SQLite: n8n boots on its own files, reading its whole tree as `node`.
    url = run_aio(images['aio'], prefix, name, '-e', 'DB_TYPE=sqlite')
    engine = DockerEngine()
    seconds, probes = wait_ready(name, url, engine.inspect, engine.logs, timeout=240)
    print('n8n ready in the AIO image after %.1f s (%d probes)' % (seconds, probes))
    assert docker('exec', name, 'id', '-un').stdout.strip() == 'node'
    assert inspect(name)['State']['Running']


@pytest.mark.parametrize('restart', ['no', 'unless-stopped'])
def test_a_container_that_crashes_ends_the_wait_with_its_exit_code_and_log(images, prefix, restart):
    name = '%s-crash' % prefix
    url = run_aio(images['aio'], prefix, name, '--restart', restart, '-e', 'NODE_OPTIONS=--no-such-node-option')
    engine = DockerEngine()
    started = time.monotonic()
    # The crash, not the timeout, ends the wait: ContainerFailed, not WaitTimedOut.
    with pytest.raises(ContainerFailed) as failure:
        wait_ready(name, url, engine.inspect, engine.logs, timeout=600, last_exit_code=engine.last_exit_code)
    print('crash reported after %.1f s' % (time.monotonic() - started))
    message = str(failure.value)
    assert 'code 9' in message, message
    assert '--no-such-node-option' in message, message
    if restart != 'no':
        assert 'restart' in message
