"""Load and validate fixtures strictly, before any call starts.

Every problem becomes one line naming the file and the key (``calls/x.yaml: turns[2].say: ...``): unknown keys,
wrong types, missing or unreadable audio, a missing reference transcript. :func:`load_suite` checks every
fixture of a folder and reports all problems at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from pydantic import ValidationError

from ivr.audio.files import AudioFileError, read_audio
from ivr.audio.frames import AudioFrame
from ivr.replay.schema import Fixture

LINE_RATES = {"wideband": 16000, "telephone": 8000}
MAX_CLIP_S = 60.0
FIXTURE_SUFFIXES = (".yaml", ".yml")


class FixtureError(Exception):
    """A fixture cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(problems[0] + more)


@dataclass(frozen=True)
class Clip:
    """A caller's utterance at the line's rate, with where the speech in it ends (for latency)."""

    audio: AudioFrame
    speech_start_s: float
    speech_end_s: float


@dataclass(frozen=True)
class LoadedFixture:
    """A validated fixture with its audio decoded to the line's sample rate."""

    fixture: Fixture
    path: Path
    sample_rate: int
    clips: dict[int, Clip] = field(default_factory=dict)  # turn index -> clip
    background: AudioFrame | None = None

    @property
    def name(self) -> str:
        return self.fixture.name


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _pydantic_problems(label: str, err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        where = _loc(tuple(e["loc"]))
        if e["type"] == "extra_forbidden":
            problems.append(f"{label}: {where}: unknown key")
        elif e["type"] == "missing":
            problems.append(f"{label}: {where}: required key missing")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            problems.append(f"{label}: {where}: {msg} (got {e.get('input')!r})" if e["type"] != "value_error" else f"{label}: {where}: {msg}")
    return problems


def speech_bounds(frame: AudioFrame) -> tuple[float, float]:
    """Start and end (seconds) of the speech in a clip, by level on 10 ms windows: louder than the clip's
    noise floor + 12 dB and than its peak - 40 dB (and -50 dBFS); (0, duration) if nothing stands out."""
    n = max(1, frame.sample_rate // 100)
    x = frame.to_float().astype(np.float64)
    k = len(x) // n
    if k == 0:
        return 0.0, frame.duration
    rms = np.sqrt(np.mean(x[: k * n].reshape(k, n) ** 2, axis=1)) + 1e-9
    db = 20 * np.log10(rms)
    threshold = max(float(np.percentile(db, 10)) + 12, float(db.max()) - 40, -50.0)
    voiced = np.flatnonzero(db > threshold)
    if len(voiced) == 0:
        return 0.0, frame.duration
    return voiced[0] * n / frame.sample_rate, min(frame.duration, (voiced[-1] + 1) * n / frame.sample_rate)


def parse_fixture(path: Path) -> Fixture:
    """Parse and validate the YAML of one fixture (no audio checks)."""
    label = str(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise FixtureError([f"{label}: cannot read ({e.strerror or e})"]) from None
    except UnicodeDecodeError:
        raise FixtureError([f"{label}: not UTF-8 text"]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise FixtureError([f"{label}: not valid YAML{where}: {getattr(e, 'problem', None) or e}"]) from None
    if not isinstance(doc, dict):
        raise FixtureError([f"{label}: expected a mapping with `turns:` at the top level"])
    doc.setdefault("name", path.stem)
    try:
        return Fixture.model_validate(doc)
    except ValidationError as e:
        raise FixtureError(_pydantic_problems(label, e)) from None


def load_fixture(path: str | Path) -> LoadedFixture:
    """Parse a fixture and load every audio file it names; raises :class:`FixtureError` listing all problems."""
    path = Path(path)
    fx = parse_fixture(path)
    rate = LINE_RATES[fx.line]
    problems: list[str] = []
    clips: dict[int, Clip] = {}
    for i, turn in enumerate(fx.turns):
        if turn.say is None:
            continue
        audio_path = (path.parent / turn.say).resolve()
        try:
            full = read_audio(audio_path, rate=None)
        except AudioFileError as e:
            problems.append(f"{path}: turns[{i}].say: {turn.say!r}: {str(e).split(': ', 1)[-1]}")
            continue
        if full.duration > MAX_CLIP_S:
            problems.append(f"{path}: turns[{i}].say: {turn.say!r} is {full.duration:.0f} s long (max {MAX_CLIP_S:.0f} s)")
            continue
        audio = read_audio(audio_path, rate=rate)
        if float(np.abs(audio.to_numpy().astype(np.int32)).max(initial=0)) < 100:
            problems.append(f"{path}: turns[{i}].say: {turn.say!r} is silent (no caller speech in it)")
            continue
        start, end = speech_bounds(audio)
        clips[i] = Clip(audio, start, end)
    background = None
    if fx.background is not None:
        try:
            background = read_audio((path.parent / fx.background).resolve(), rate=rate, max_seconds=MAX_CLIP_S)
        except AudioFileError as e:
            problems.append(f"{path}: background: {fx.background!r}: {str(e).split(': ', 1)[-1]}")
    if problems:
        raise FixtureError(problems)
    return LoadedFixture(fx, path, rate, clips, background)


def fixture_files(target: str | Path) -> list[Path]:
    """The fixture files of a file or folder (recursively, sorted)."""
    p = Path(target)
    if not p.exists():
        raise FixtureError([f"{p}: no such file or folder"])
    if p.is_file():
        return [p]
    files = sorted(f for f in p.rglob("*") if f.suffix in FIXTURE_SUFFIXES and f.is_file())
    if not files:
        raise FixtureError([f"{p}: no fixture files (*.yaml) in this folder"])
    return files


def load_suite(target: str | Path) -> list[LoadedFixture]:
    """Load every fixture under ``target``; all problems of all files are reported together."""
    problems: list[str] = []
    out: list[LoadedFixture] = []
    seen: dict[str, Path] = {}
    for f in fixture_files(target):
        try:
            lf = load_fixture(f)
        except FixtureError as e:
            problems.extend(e.problems)
            continue
        if lf.name in seen:
            problems.append(f"{f}: name: {lf.name!r} is already used by {seen[lf.name]}")
            continue
        seen[lf.name] = f
        out.append(lf)
    if problems:
        raise FixtureError(problems)
    return out
