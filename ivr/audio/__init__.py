"""Audio basics: PCM frames, resampling, G.711, file reading. Depends on nothing else in ivr."""

from ivr.audio.frames import AudioFrame, concat_frames, frames_of
from ivr.audio.resample import Resampler, resample

__all__ = ["AudioFrame", "Resampler", "concat_frames", "frames_of", "resample"]
