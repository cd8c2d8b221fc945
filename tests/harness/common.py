"""Helpers shared by the harness servers."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class HarnessError(RuntimeError):
    """A server of the harness could not be started or reached."""


def cache_dir() -> Path:
    """Where installed servers (n8n's npm tree, built images) are kept between runs."""
    path = Path(os.environ.get('FEDERATION_CACHE_DIR') or Path.home() / '.cache' / 'federation')
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def wait_for(check, timeout: float, what: str, interval: float = 0.2, process: subprocess.Popen | None = None,
             log: Path | None = None):
    """Call ``check`` until it returns a true value; raise HarnessError naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise HarnessError('%s: the process exited with code %s before it was ready%s'
                               % (what, process.returncode, _tail(log)))
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # any failure of the probe means "not yet"
            last = exc
        time.sleep(interval)
    raise HarnessError('%s: not ready after %.0f s (last error: %s)%s' % (what, timeout, last, _tail(log)))


def _tail(log: Path | None, lines: int = 25) -> str:
    if log is None or not Path(log).exists():
        return ''
    text = Path(log).read_text(errors='replace').splitlines()[-lines:]
    return '\n--- last lines of %s ---\n%s' % (log, '\n'.join(text))


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    """Run a command, raising HarnessError with its output when it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if proc.returncode != 0:
        command = ' '.join(map(str, cmd))
        raise HarnessError('%s failed with code %d:\n%s%s' % (command, proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    return proc


def stop_process_group(process: subprocess.Popen | None, timeout: float = 10):
    """Stop a server started in a session of its own: SIGTERM to its group, SIGKILL when it lingers."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, 15)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait()
