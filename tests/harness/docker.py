"""The local Docker engine: started when it is installed but not running."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .common import HarnessError, cache_dir, wait_for


def engine_running() -> bool:
    if shutil.which('docker') is None:
        return False
    return subprocess.run(['docker', 'info', '--format', '{{.ServerVersion}}'], capture_output=True, check=False).returncode == 0


def ensure_engine(timeout: float = 60) -> str:
    """Make sure a Docker engine answers; start dockerd (as root) when it does not. Returns its version."""
    if not engine_running():
        if shutil.which('dockerd') is None:
            raise HarnessError('no Docker engine: install the Debian package docker.io (scripts/setup does)')
        if os.geteuid() != 0:
            raise HarnessError('the Docker engine is not running and only root can start dockerd')
        log = Path(cache_dir()) / 'dockerd.log'
        subprocess.Popen(['dockerd'], stdout=open(log, 'ab'), stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(engine_running, timeout, 'dockerd', interval=0.5, log=log)
    proc = subprocess.run(['docker', 'info', '--format', '{{.ServerVersion}}'], capture_output=True, text=True, check=False)
    return proc.stdout.strip()
