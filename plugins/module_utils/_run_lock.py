# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""Locks held by a whole playbook run: an exclusive ``flock`` on a file, kept by a small holder process.

A module ends when its task ends, so it cannot hold a lock for the rest of the run itself. It takes the
lock, then leaves the open file to a holder process of its own (detached, no output) that keeps it while
the ``ansible-playbook`` process of the run lives, or until the run releases it. The kernel drops the
lock the moment the holder exits: a run that crashed or was killed frees it within a fraction of a
second, and no stale lock file ever needs cleaning.

The lock file names its holder (JSON: the run's pid, host, start time, what it does), so a run that
finds it taken can say which run holds it.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import signal
import socket
import time

# The programs whose process is "the run": the topmost one among a module's ancestors.
RUN_PROGRAMS = ('ansible-playbook', 'ansible', 'ansible-runner', 'ansible-navigator')
POLL = 0.2


class LockBusy(Exception):
    """Another run holds the lock; ``holder`` describes it (a dict, possibly empty)."""

    def __init__(self, holder):
        Exception.__init__(self, describe(holder))
        self.holder = holder


def _proc(pid, name):
    try:
        with open('/proc/%d/%s' % (pid, name), 'rb') as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def start_ticks(pid):
    """The start time of process ``pid`` in clock ticks since boot (tells a live process from a reused pid)."""
    stat = _proc(pid, 'stat')
    if not stat:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing parenthesis.
    fields = stat[stat.rfind(b')') + 2:].split()
    return int(fields[19]) if len(fields) > 19 else None


def parent(pid):
    stat = _proc(pid, 'stat')
    if not stat:
        return None
    return int(stat[stat.rfind(b')') + 2:].split()[1])


def run_pid(pid=None):
    """The pid of the run this process belongs to: its topmost ancestor running one of RUN_PROGRAMS, or None."""
    pid = os.getppid() if pid is None else pid
    found = None
    while pid and pid > 1:
        argv = (_proc(pid, 'cmdline') or b'').split(b'\0')
        names = [os.path.basename(a).decode('utf-8', 'replace') for a in argv[:2]]
        if any(name in RUN_PROGRAMS for name in names):
            found = pid
        pid = parent(pid)
    return found


def alive(pid, ticks):
    """Whether process ``pid`` still runs and is the one that started at ``ticks``."""
    if not pid:
        return False
    stat = _proc(pid, 'stat')
    if not stat or stat[stat.rfind(b')') + 2:].split()[0] in (b'Z', b'X'):
        return False   # gone, or a zombie nobody reaped yet: it holds nothing any more
    return ticks is None or start_ticks(pid) == ticks


def read_holder(path):
    try:
        with open(path) as handle:
            return json.loads(handle.read() or '{}')
    except (IOError, OSError, ValueError):
        return {}


def describe(holder):
    if not holder.get('pid'):
        return 'another run (it did not say which)'
    return 'run pid %s on %s, started %s (%s)' % (holder.get('pid'), holder.get('host'), holder.get('started'),
                                                  holder.get('purpose') or 'no purpose given')


def _hold(fd, owner, owner_ticks, max_seconds, report):
    """The holder process: detach, report its pid, keep ``fd`` (and so the lock) while the run lives."""
    os.setsid()
    if os.fork():
        os._exit(0)
    try:
        os.chdir('/')
        devnull = os.open(os.devnull, os.O_RDWR)
        for std in (0, 1, 2):
            os.dup2(devnull, std)
        os.write(report, str(os.getpid()).encode())
        os.close(report)
        keep = {0, 1, 2, fd}
        for other in os.listdir('/proc/self/fd'):
            if int(other) not in keep:
                try:
                    os.close(int(other))
                except OSError:
                    pass
        signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
        deadline = time.monotonic() + max_seconds if max_seconds else None
        while (owner is None or alive(owner, owner_ticks)) and (deadline is None or time.monotonic() < deadline):
            time.sleep(POLL)
    finally:
        os._exit(0)


def _held_by(holder, owner, ticks):
    """Whether ``holder`` (a lock file's contents) is the run ``owner`` (started at ``ticks``), its holder alive."""
    return bool(owner) and holder.get('pid') == owner and holder.get('ticks') == ticks and alive(holder.get('holder_pid'), None)


def _wait_or_give_up(holder, deadline):
    """Another run holds the lock: wait POLL seconds more, or raise LockBusy once ``deadline`` has passed.

    A holder that has not written its name yet (it is about to), or whose run has ended (it lets go within POLL
    seconds), is worth a few more seconds, so the message names the right run."""
    passing = not holder.get('pid') or not alive(holder['pid'], holder.get('ticks'))
    if time.monotonic() >= deadline and not (passing and time.monotonic() < deadline + 5):
        raise LockBusy(holder)
    time.sleep(POLL)


def acquire(path, purpose, wait=0, max_seconds=0, owner=None):
    """Take the lock at ``path`` for the run this process belongs to.

    Returns (changed, holder): changed is False when the run already held it. Waits up to ``wait`` seconds
    for a live holder; a holder whose run has ended is always waited for (it lets go within POLL seconds).
    Raises LockBusy when another run still holds it. Without a run process to watch (a module not started
    by ansible-playbook), the lock is held for ``max_seconds`` (0: until released).
    """
    owner = run_pid() if owner is None else owner
    ticks = start_ticks(owner) if owner else None
    folder = os.path.dirname(path)
    if folder and not os.path.isdir(folder):
        os.makedirs(folder, 0o700)
    deadline = time.monotonic() + wait
    while True:
        holder = read_holder(path)
        if _held_by(holder, owner, ticks):
            return False, holder
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (IOError, OSError) as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            _wait_or_give_up(read_holder(path), deadline)
            continue
        break
    try:
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(read_end)
            _hold(fd, owner, ticks, max_seconds, write_end)
        os.close(write_end)
        os.waitpid(child, 0)
        holder_pid = int(os.read(read_end, 32) or 0)
        os.close(read_end)
        if not holder_pid:
            raise OSError(errno.ECHILD, 'the process that keeps the lock did not start')
        holder = dict(pid=owner or os.getpid(), ticks=ticks, holder_pid=holder_pid, host=socket.gethostname(),
                      started=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'), purpose=purpose)
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder, sort_keys=True) + '\n').encode(), 0)
    finally:
        os.close(fd)   # the holder keeps its own copy, and with it the lock
    return True, holder


def probe(path, wait=0, owner=None):
    """What check mode does instead of ``acquire``: make sure no other run holds the lock, writing nothing.

    A lock file that does not exist is held by nobody. An existing one is tested with a lock taken and dropped
    at once on a read-only descriptor (its contents and times stay as they are). Returns the holder when this
    run holds it, else {}; raises LockBusy like ``acquire`` when another run holds it after ``wait`` seconds.
    """
    owner = run_pid() if owner is None else owner
    ticks = start_ticks(owner) if owner else None
    deadline = time.monotonic() + wait
    while True:
        holder = read_holder(path)
        if _held_by(holder, owner, ticks):
            return holder
        try:
            fd = os.open(path, os.O_RDONLY)
        except (IOError, OSError) as exc:
            if exc.errno == errno.ENOENT:
                return {}
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return {}
        except (IOError, OSError) as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        finally:
            os.close(fd)   # closing drops the shared lock, if it was taken
        _wait_or_give_up(read_holder(path), deadline)


def release(path, owner=None):
    """Let go of the lock at ``path`` when this run holds it. Returns whether it did."""
    owner = run_pid() if owner is None else owner
    holder = read_holder(path)
    if not holder.get('holder_pid'):
        return False
    if owner and (holder.get('pid') != owner or holder.get('ticks') != start_ticks(owner)):
        return False   # another run's lock
    pid = holder['holder_pid']
    if not alive(pid, None):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while alive(pid, None) and time.monotonic() < deadline:
        time.sleep(0.02)
    return True
