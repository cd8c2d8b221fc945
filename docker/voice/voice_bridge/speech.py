"""Offline speech: a recogniser built from the department's own phrases (pocketsphinx, a JSGF grammar),
run in a pool of processes because decoding holds the GIL, and espeak-ng for the answers."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from concurrent.futures import ProcessPoolExecutor
import multiprocessing

from . import audio

log = logging.getLogger('voice_bridge.speech')

DIGITS = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine')
LEADS = ('tell me about', 'what about', 'what are the', 'what is the', 'i want', 'i need', 'i would like',
         'can you help me with', 'a question about', 'my')
YES_NO = ('yes', 'no', 'yes please', 'no thanks', 'thank you', 'goodbye', 'repeat that')


def _words(text: str) -> list:
    return re.findall(r"[a-z']+", text.lower())


def grammar(department: str, topics, transfer_to, known=None) -> str:
    """A JSGF grammar of what a caller of ``department`` may say: a topic (with a lead-in), a transfer to
    one of ``transfer_to``, yes/no, digits. ``known(word)`` tells whether the recogniser's dictionary has a
    word; a phrase with an unknown word is left out."""
    def keep(phrases):
        out = []
        for phrase in phrases:
            words = _words(phrase.replace('_', ' ').replace('-', ' '))
            if words and (known is None or all(known(w) for w in words)):
                out.append(' '.join(words))
            elif words:
                log.warning('phrase %r left out of the grammar: a word is not in the dictionary', phrase)
        return sorted(set(out))
    topics = keep(list(topics) + [department]) or ['help']
    depts = keep(transfer_to)
    # One flat rule: pocketsphinx's grammar search found nested optional rules harder to follow.
    choices = ['[%s] (%s) [please]' % (' | '.join(keep(LEADS)), ' | '.join(topics))]
    if depts:
        choices.append('[please] (transfer | connect | put) me (to | through to) (%s) [please]' % ' | '.join(depts))
    choices += ['(%s)' % ' | '.join(keep(YES_NO)), '<digit> [<digit>] [<digit>] [<digit>]']
    return '\n'.join(['#JSGF V1.0;', 'grammar department;', 'public <utterance> = %s;' % ' | '.join(choices),
                      '<digit> = %s;' % ' | '.join(DIGITS)]) + '\n'


# --- in the worker processes -----------------------------------------------------------------------------

_DECODER = None


def _worker_init(topics, transfer_to, department):
    global _DECODER
    from pocketsphinx import Decoder
    # The grammar's own best path: the lattice rescoring (bestpath) cut phrases short.
    decoder = Decoder(loglevel='FATAL', lm=None, bestpath=False)
    decoder.add_jsgf_string('department', grammar(department, topics, transfer_to,
                                                  known=lambda w: decoder.lookup_word(w) is not None))
    decoder.activate_search('department')
    _DECODER = decoder


def _warm(seconds):
    time.sleep(seconds)
    return _DECODER is not None


def _decode(pcm16k: bytes) -> tuple:
    started = time.process_time()
    _DECODER.start_utt()
    _DECODER.process_raw(pcm16k, full_utt=True)
    _DECODER.end_utt()
    hyp = _DECODER.hyp()
    return (hyp.hypstr if hyp is not None else ''), time.process_time() - started


class Recogniser:
    """A bounded pool of recogniser processes, each with the department's grammar loaded once."""

    def __init__(self, department: str, topics, transfer_to, workers: int):
        self.workers = workers
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context('spawn'),
                                         initializer=_worker_init, initargs=(tuple(topics), tuple(transfer_to), department))
        self.cpu_seconds = 0.0

    async def start(self):
        """Start every worker now (loading the model takes a moment) rather than on the first call."""
        loop = asyncio.get_running_loop()
        ready = await asyncio.gather(*[loop.run_in_executor(self._pool, _warm, 0.3) for worker in range(self.workers)])
        if not all(ready):
            raise RuntimeError('a speech recogniser did not start')

    async def recognise(self, pcm16k: bytes) -> str:
        text, cpu = await asyncio.get_running_loop().run_in_executor(self._pool, _decode, pcm16k)
        self.cpu_seconds += cpu
        return text

    def close(self):
        self._pool.shutdown(wait=False, cancel_futures=True)


class SynthesisError(RuntimeError):
    pass


async def synthesise(text: str, voice: str = 'en-us', speed: int = 165) -> bytes:
    """``text`` spoken by espeak-ng, as 8 kHz mu-law."""
    proc = await asyncio.create_subprocess_exec(
        'espeak-ng', '-v', voice, '-s', str(speed), '--stdout', '--', text,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    wav, err = await proc.communicate()
    if proc.returncode != 0 or not wav:
        raise SynthesisError('espeak-ng failed (exit %s): %s' % (proc.returncode, err.decode(errors='replace')[-300:]))
    return audio.wav_to_mulaw(wav)


def sentences(text: str) -> list:
    """The answer cut after each sentence, so the first one can be spoken while the rest is synthesised."""
    parts = [p.strip() for p in re.split(r'(?<=[.!?;])\s+', text) if p.strip()]
    return parts or [text]
