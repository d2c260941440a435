"""A small process that synthesizes words with libespeak-ng, one fresh library state per video.

Run as a script (``python -I -S espeak_server.py``: standard library only, no polysent import),
it reads one request per line on stdin and answers each on stdout with a 4-byte little-endian
signed length then that many bytes (length < 0: a UTF-8 error message of -length bytes):

* ``V<TAB>voice``: start a fresh synthesizer for ``voice`` (e.g. ``fr+f3``); answer ``ok``;
* ``W<TAB>rate<TAB>pitch<TAB>amplitude<TAB>word``: synthesize ``word`` alone with the current
  voice; answer its 16-bit PCM samples at 22,050 Hz.

Why: the ``espeak-ng`` command costs ~10 ms a word, almost all of it process start-up and
loading the phoneme tables and the voice; the synthesis itself takes ~0.6 ms. In-process calls
are not stateless, though: libespeak-ng carries the echo buffer, the flutter table index, the
breath-noise generator and the AGC from one utterance to the next, so a word's samples depend on
the words synthesized before it in the same process. To keep a video's audio independent of which
pool worker renders it and of what that worker rendered before, every ``V`` request forks a new
synthesizer from the server's pristine, just-initialised library: a video's words then always
start from the same state and follow in the same order. The first word after ``V`` has exactly
the samples ``espeak-ng -v VOICE -s RATE -p PITCH -a AMP --stdout WORD`` writes after its 44-byte
header (tests/test_demo_corpus.py checks this); later words differ from isolated command-line
calls only by that carried state (a little echo, flutter phase and breath noise). A fork per
word would keep every word identical to the command line, but costs ~3 ms a word here (os.fork
of even an 18 MB Python process), five times the synthesis.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
import sys

AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
# The command-line tool's flags for text given as an argument: auto charset, [[phonemes]], end pause.
SYNTH_FLAGS = 0x0 | 0x100 | 0x1000
ESPEAK_RATE, ESPEAK_VOLUME, ESPEAK_PITCH = 1, 2, 3
LIBRARY_NAMES = ("libespeak-ng.so.1", "libespeak-ng.so", "libespeak-ng.1.dylib")


def load_library():
    """The libespeak-ng shared library, or None where it cannot be loaded."""
    names = list(LIBRARY_NAMES)
    found = ctypes.util.find_library("espeak-ng")
    if found:
        names.insert(0, found)
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):  # a conda env's own lib/ first
        names[:0] = [os.path.join(prefix, "lib", name) for name in LIBRARY_NAMES]
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def _frame(payload: bytes, error: bool = False) -> bytes:
    return struct.pack("<i", -len(payload) if error else len(payload)) + payload


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_line(fd: int, buf: bytearray) -> bytes | None:
    while b"\n" not in buf:
        chunk = os.read(fd, 65536)
        if not chunk:
            return None
        buf += chunk
    i = buf.index(b"\n")
    line = bytes(buf[:i])
    del buf[: i + 1]
    return line


class _Synth:
    def __init__(self, lib):
        self.lib = lib
        self.chunks: list[bytes] = []
        proto = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

        def on_samples(wav, n, _events):
            if n > 0:
                self.chunks.append(ctypes.string_at(wav, 2 * n))
            return 0

        self._callback = proto(on_samples)  # keep a reference: the library calls it later
        if lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0) <= 0:
            raise RuntimeError("espeak_Initialize failed")
        lib.espeak_SetSynthCallback(self._callback)

    def word(self, rate: int, pitch: int, amplitude: int, word: str) -> bytes:
        lib = self.lib
        lib.espeak_SetParameter(ESPEAK_RATE, rate, 0)
        lib.espeak_SetParameter(ESPEAK_VOLUME, amplitude, 0)
        lib.espeak_SetParameter(ESPEAK_PITCH, pitch, 0)
        text = word.encode("utf-8") + b"\0"
        self.chunks.clear()
        if lib.espeak_Synth(text, len(text), 0, POS_CHARACTER, 0, SYNTH_FLAGS, None, None) != 0:
            raise RuntimeError(f"espeak_Synth failed on {word!r}")
        lib.espeak_Synchronize()
        return b"".join(self.chunks)


def _synthesizer(synth: _Synth, voice: str, requests: int, out: int) -> None:
    """Child process of one video: set the voice, then synthesize its words in order."""
    voice_ok = synth.lib.espeak_SetVoiceByName(voice.encode("utf-8")) == 0
    _write_all(out, _frame(b"ok" if voice_ok else f"espeak-ng has no voice {voice!r}".encode(), not voice_ok))
    buf = bytearray()
    while (line := _read_line(requests, buf)) is not None:
        if not voice_ok:
            _write_all(out, _frame(f"espeak-ng has no voice {voice!r}".encode(), error=True))
            continue
        try:
            _kind, rate, pitch, amplitude, word = line.decode("utf-8").split("\t", 4)
            payload, error = synth.word(int(rate), int(pitch), int(amplitude), word), False
        except Exception as exc:  # report to the client, keep serving
            payload, error = str(exc).encode(), True
        _write_all(out, _frame(payload, error))


def serve(inp: int = 0, out: int = 1) -> None:
    lib = load_library()
    if lib is None:
        _write_all(out, _frame(b"libespeak-ng not found", error=True))
        return
    synth = _Synth(lib)
    _write_all(out, _frame(b"ready"))
    current: tuple[int, int] | None = None  # (pid, request pipe) of the current synthesizer
    buf = bytearray()

    def stop() -> None:
        if current is not None:
            os.close(current[1])
            os.waitpid(current[0], 0)  # its answers are all written before the next begin

    while (line := _read_line(inp, buf)) is not None:
        if line.startswith(b"V\t"):
            stop()
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(w)
                _synthesizer(synth, line[2:].decode("utf-8"), r, out)
                os._exit(0)
            os.close(r)
            current = (pid, w)
        elif current is None:
            _write_all(out, _frame(b"no voice chosen (send V<TAB>voice first)", error=True))
        else:
            _write_all(current[1], line + b"\n")
    stop()


if __name__ == "__main__":
    serve(sys.stdin.fileno(), sys.stdout.fileno())
