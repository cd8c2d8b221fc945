#!/usr/bin/env python
"""Voice bridge turn latency: 1, 5 and 10 concurrent Media Streams calls on one bridge (a process on loopback,
stream mode, its recogniser pool) with the deterministic assistant.

    .venv/bin/python bench/voice.py [--calls 1,5,10] [--turns 3] [--workers 2]

Each call is a test phone streaming espeak-ng speech as 20 ms mu-law frames in real time. Turn latency is
from the caller's last voiced frame sent to the first frame of the answer received: end-of-speech detection,
recognition, the assistant's answer and the first sentence synthesised. CPU per call is the bridge's CPU time
(its process, its recogniser workers and the espeak-ng processes it ran) divided by the calls. Prints; nothing
is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402

from tests.harness.voice import BridgeProcess, FakeAssistant, Phone, connect, speech_mulaw  # noqa: E402

PHRASES = ('tell me about opening hours', 'what about payroll', 'i need payroll', 'yes')
TICKS = os.sysconf('SC_CLK_TCK')


def cpu_seconds(pid: int) -> float:
    """CPU time of a process, its live children and the children it has reaped."""
    def stat(p):
        try:
            fields = Path('/proc/%d/stat' % p).read_text().rsplit(')', 1)[1].split()
        except OSError:
            return 0, []
        return int(fields[11]) + int(fields[12]), [int(fields[13]), int(fields[14])]
    own, reaped = stat(pid)
    total = own + sum(reaped)
    for task in Path('/proc/%d/task' % pid).iterdir():
        for child in (task / 'children').read_text().split():
            child_own, child_reaped = stat(int(child))
            total += child_own + sum(child_reaped)
    return total / TICKS


async def one_call(bridge, index: int, turns: int, audio: dict, latencies: list, heard: list):
    await asyncio.sleep(index * 0.13)   # calls do not start in lockstep
    async with aiohttp.ClientSession() as session:
        phone = Phone(await connect(session, bridge.base, bridge.public_url, bridge.auth_token, '/twilio/stream'),
                      bridge.department)
        await phone.start()
        await phone.next_utterance(60)
        for turn in range(turns):
            phrase = PHRASES[(index + turn) % len(PHRASES)]
            stopped = await phone.say(phrase, silence=0.8, mulaw=audio[phrase])
            await phone.next_utterance(60)
            if phone.first_frame_at is not None:
                latencies.append(phone.first_frame_at - stopped)
            await asyncio.sleep(0.3)
        await phone.hang_up()


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--calls', default='1,5,10')
    parser.add_argument('--turns', type=int, default=3)
    parser.add_argument('--workers', type=int, default=2, help='recogniser processes (VOICE_MAX_CALLS)')
    args = parser.parse_args()
    assistant = FakeAssistant('bench-' + 'x' * 20)
    audio = {phrase: speech_mulaw(phrase) for phrase in PHRASES}
    with tempfile.TemporaryDirectory(prefix='voice-bench-') as workdir:
        bridge = BridgeProcess(assistant, 'stream', Path(workdir), max_calls=args.workers)
        try:
            print('voice bridge, stream mode, %d recogniser processes, %d turns per call, %d CPUs'
                  % (args.workers, args.turns, os.cpu_count()))
            header = ('calls', 'turns', 'p50 s', 'p95 s', 'max s', 'CPU s/call', 'wall s')
            print('%6s %7s %8s %8s %8s %12s %10s' % header)
            for calls in [int(c) for c in args.calls.split(',')]:
                latencies, heard = [], []
                cpu0, wall0 = cpu_seconds(bridge.proc.pid), time.monotonic()

                async def run():
                    await asyncio.gather(*[one_call(bridge, i, args.turns, audio, latencies, heard)
                                           for i in range(calls)])
                asyncio.run(run())
                cpu = cpu_seconds(bridge.proc.pid) - cpu0
                wall = time.monotonic() - wall0
                print('%6d %7d %8.3f %8.3f %8.3f %12.3f %10.1f' % (
                    calls, len(latencies), statistics.median(latencies), percentile(latencies, 0.95),
                    max(latencies), cpu / calls, wall))
            print('assistant turns answered: %d' % len(assistant.calls))
        finally:
            bridge.stop()
            assistant.stop()
    print(subprocess.run(['uptime'], capture_output=True, text=True, check=False).stdout.strip())


if __name__ == '__main__':
    main()
