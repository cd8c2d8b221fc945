"""Sample rate conversion for telephone audio and espeak-ng's output."""

from __future__ import annotations

import io
import wave

import numpy as np

from . import g711

TELEPHONE_RATE = 8000
RECOGNISER_RATE = 16000
FRAME_BYTES = 160          # 20 ms of 8 kHz mu-law, as the telephony platform frames it


def _lowpass(cutoff: float, rate: int, taps: int = 63) -> np.ndarray:
    n = np.arange(taps) - (taps - 1) / 2
    h = np.sinc(2 * cutoff / rate * n) * np.hamming(taps)
    return h / h.sum()


_FILTERS: dict = {}


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """16-bit samples from one rate to another: low-pass below the lower Nyquist frequency, then
    linear interpolation."""
    if rate_in == rate_out or len(samples) == 0:
        return samples.astype(np.int16)
    x = samples.astype(np.float64)
    if rate_out < rate_in:
        key = (rate_in, rate_out)
        if key not in _FILTERS:
            _FILTERS[key] = _lowpass(0.45 * rate_out, rate_in)
        x = np.convolve(x, _FILTERS[key], mode='same')
    positions = np.arange(0, len(x) - 1, rate_in / rate_out)
    y = np.interp(positions, np.arange(len(x)), x)
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)


def mulaw_to_recogniser(payload: bytes) -> bytes:
    """A telephone frame (8 kHz mu-law) as 16 kHz 16-bit little-endian PCM for the recogniser."""
    pcm = g711.decode(payload).astype(np.float64)
    # Two output samples per input sample: the sample itself and the midpoint to the next one.
    out = np.empty(len(pcm) * 2)
    out[0::2] = pcm
    out[1:-1:2] = (pcm[:-1] + pcm[1:]) / 2
    out[-1] = pcm[-1]
    return out.astype('<i2').tobytes()


def wav_to_mulaw(wav: bytes) -> bytes:
    """A mono 16-bit WAV file (espeak-ng's output) as 8 kHz mu-law."""
    with wave.open(io.BytesIO(wav)) as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError('expected 16-bit mono WAV, got %d-byte samples, %d channels'
                             % (w.getsampwidth(), w.getnchannels()))
        rate = w.getframerate()
        # espeak-ng writing to a pipe leaves the length fields unset: read what is there.
        samples = np.frombuffer(w.readframes(1 << 30), dtype='<i2')
    return g711.encode(resample(samples, rate, TELEPHONE_RATE))


def frames(mulaw: bytes, size: int = FRAME_BYTES) -> list:
    """20 ms frames; the last one padded with mu-law silence."""
    out = [mulaw[i:i + size] for i in range(0, len(mulaw), size)]
    if out and len(out[-1]) < size:
        out[-1] = out[-1] + b'\xff' * (size - len(out[-1]))
    return out
