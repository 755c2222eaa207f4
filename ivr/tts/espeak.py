"""libespeak-ng driven directly through ctypes: synchronous output, one process-wide lock.

Why not pyttsx3's espeak driver: measured here it segfaults in ~40 % of processes and hangs across threads.
libespeak-ng keeps global state (current voice, parameters, callback), so every call into it holds
:data:`EspeakLibrary.lock`; synthesis runs in the caller's (worker) thread and returns the samples.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import sys
import threading
from dataclasses import dataclass

from ivr.audio.frames import AudioFrame
from ivr.tts.base import TtsError

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000
_RATE, _VOLUME = 1, 2
_EE_OK, _EE_NOT_FOUND = 0, 2
_EVENT_LIST_TERMINATED, _EVENT_PHONEME = 0, 7

MAX_AUDIO_SECONDS = 20 * 60  # a runaway synthesis is aborted past this
_VOICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_+\-/]{0,63}$")


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True, slots=True)
class VoiceInfo:
    """An installed espeak-ng voice: its name, main language and file identifier."""

    name: str
    languages: tuple[str, ...]
    identifier: str


@dataclass(slots=True)
class _Job:
    chunks: list[bytes]
    phonemes: list[tuple[int, str]]
    samples: int = 0
    limit: int = 0
    aborted: bool = False


def find_library() -> str:
    """Locate libespeak-ng (ctypes.util.find_library, then the Debian soname)."""
    found = ctypes.util.find_library("espeak-ng")
    if found:
        return found
    return "libespeak-ng.dylib" if sys.platform == "darwin" else "libespeak-ng.so.1"


class EspeakLibrary:
    """The process-wide libespeak-ng handle. Use :meth:`instance`; never construct twice."""

    _instance: EspeakLibrary | None = None
    _instance_lock = threading.Lock()

    def __init__(self, path: str | None = None) -> None:
        self.lock = threading.Lock()
        try:
            lib = ctypes.CDLL(path or find_library())
        except OSError:
            raise TtsError(
                "libespeak-ng not found: install the Debian package libespeak-ng1 (./run setup does)"
            ) from None
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_SetVoiceByProperties.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INIT_PHONEME_EVENTS | _INIT_DONT_EXIT)
        if rate <= 0:
            raise TtsError("libespeak-ng failed to start: its data (espeak-ng-data) is missing or unreadable")
        self._lib = lib
        self.sample_rate = rate
        self._callback = _CALLBACK(self._on_audio)  # keep a reference: libespeak-ng holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self._job: _Job | None = None
        self._voice: str | None = None
        self._speed: int | None = None
        self._voice_list: list[VoiceInfo] | None = None
        self.syntheses = 0  # completed espeak_Synth calls (for tests and benchmarks)

    @classmethod
    def instance(cls) -> EspeakLibrary:
        """The shared handle, loaded and initialised on first use."""
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    # -- called by libespeak-ng inside espeak_Synth, in the synthesising thread, under self.lock --------------
    def _on_audio(self, wav, n, events) -> int:
        job = self._job
        if job is None:
            return 1
        if wav and n > 0:
            job.chunks.append(ctypes.string_at(wav, n * 2))
            job.samples += n
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == _EVENT_PHONEME:
                job.phonemes.append((ev.audio_position, ev.id.string.decode("latin-1")))
            i += 1
        if job.samples > job.limit:
            job.aborted = True
            return 1
        return 0

    def _select(self, voice: str, speed: int) -> None:
        """Set voice and speed if they differ from the current ones (caller holds the lock)."""
        if voice != self._voice:
            if not _VOICE_NAME.match(voice) or ".." in voice:
                raise TtsError(f"invalid voice name {voice!r}")
            self._voice = self._speed = None
            err = self._lib.espeak_SetVoiceByName(voice.encode())
            if err != _EE_OK and voice.lower() in self._languages():
                # a language tag such as "zh": let espeak-ng pick the best voice, as its CLI does
                err = self._set_by_language(voice)
            if err != _EE_OK:
                raise TtsError(f"unknown espeak-ng voice {voice!r} (see `espeak-ng --voices`; Mandarin: cmn-latn-pinyin)")
            self._voice = voice
        if speed != self._speed:
            self._lib.espeak_SetParameter(_RATE, int(speed), 0)
            self._speed = speed

    def check_voice(self, voice: str) -> None:
        """Raise TtsError if ``voice`` cannot be selected."""
        with self.lock:
            self._select(voice, self._speed or 175)

    def _set_by_language(self, language: str) -> int:
        spec = _Voice()
        lang = ctypes.create_string_buffer(language.encode())
        spec.languages = ctypes.addressof(lang)
        return self._lib.espeak_SetVoiceByProperties(ctypes.byref(spec))

    def synth(self, text: str, voice: str, speed: int) -> AudioFrame:
        """Speak ``text``; returns s16 mono at the library rate, ``meta['phonemes']`` = [(ms, phoneme), ...]."""
        data = text.encode("utf-8") + b"\0"
        with self.lock:
            self._select(voice, speed)
            job = _Job([], [], limit=MAX_AUDIO_SECONDS * self.sample_rate)
            self._job = job
            try:
                err = self._lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _ENDPAUSE, None, None)
            finally:
                self._job = None
            self.syntheses += 1
        if job.aborted:
            raise TtsError(f"speech would be longer than {MAX_AUDIO_SECONDS // 60} minutes; send shorter text")
        if err != _EE_OK:
            raise TtsError(f"libespeak-ng failed to synthesise (error {err})")
        meta = {"phonemes": job.phonemes, "voice": voice, "speed": speed}
        return AudioFrame(b"".join(job.chunks), self.sample_rate, 0.0, meta)

    def phonemes(self, text: str, voice: str) -> str:
        """espeak-ng's own phoneme transcription (ASCII mnemonics, tones as digits), clauses joined by spaces."""
        raw = ctypes.create_string_buffer(text.encode("utf-8") + b"\0")
        ptr = ctypes.c_void_p(ctypes.addressof(raw))
        out: list[str] = []
        with self.lock:
            self._select(voice, self._speed or 175)
            while ptr.value:
                res = self._lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, 0)
                if res:
                    out.append(res.decode("utf-8", "replace").strip())
        return " ".join(p for p in out if p)

    def voices(self) -> list[VoiceInfo]:
        """Installed voices."""
        with self.lock:
            return self._list_voices()

    def _list_voices(self) -> list[VoiceInfo]:
        if self._voice_list is None:
            arr = self._lib.espeak_ListVoices(None)
            out: list[VoiceInfo] = []
            i = 0
            while arr and arr[i]:
                v = arr[i].contents
                out.append(VoiceInfo((v.name or b"").decode(), _languages(v.languages), (v.identifier or b"").decode()))
                i += 1
            self._voice_list = out
        return self._voice_list

    def _languages(self) -> set[str]:
        return {lang.lower() for v in self._list_voices() for lang in v.languages}


def _languages(ptr: int | None) -> tuple[str, ...]:
    """Decode espeak_VOICE.languages: (priority byte, NUL-terminated name) pairs ending with a zero byte."""
    out: list[str] = []
    while ptr and ctypes.string_at(ptr, 1) != b"\0":
        name = ctypes.string_at(ptr + 1)
        out.append(name.decode("utf-8", "replace"))
        ptr += 2 + len(name)
    return tuple(out)


class EspeakBackend:
    """:class:`~ivr.tts.base.TtsBackend` over :class:`EspeakLibrary` (the default on Linux)."""

    name = "espeak"

    def __init__(self, library: EspeakLibrary | None = None) -> None:
        self.library = library or EspeakLibrary.instance()

    @property
    def sample_rate(self) -> int:
        return self.library.sample_rate

    def render(self, text: str, voice: str, speed: int) -> AudioFrame:
        return self.library.synth(text, voice, speed)

    def check_voice(self, voice: str) -> None:
        """Raise TtsError if ``voice`` is not installed."""
        self.library.check_voice(voice)

    def phonemes(self, text: str, voice: str) -> str:
        return self.library.phonemes(text, voice)
