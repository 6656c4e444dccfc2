"""Media processing on 8 kHz int16 audio: G.711, in-band DTMF, jitter buffer, VAD and WAV files.

Codecs and detectors are pure functions (or small state machines) over numpy arrays, with no
per-sample Python loop on the media path; where it helps, they take a batch of frames at once so
that one media clock pass handles every call in one numpy operation.
"""
