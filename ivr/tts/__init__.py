"""Prompt audio: speech synthesis (pyttsx3 + espeak-ng), the prompt cache, and the prompt build.

* :mod:`ivr.tts.engine`: :class:`~ivr.tts.engine.Synthesizer` renders text in a language to an
  8 kHz 16-bit mono WAV (one engine per process, blocking API: use ``asyncio.to_thread``).
* :mod:`ivr.tts.mandarin`: the Mandarin front-end: Chinese text (and the Chinese part of a mixed
  prompt) to pinyin with tone numbers for espeak-ng's ``cmn-latn-pinyin`` voice, Latin words to
  the English voice; :mod:`ivr.tts.zh_numbers` reads the digits in Chinese text.
* :mod:`ivr.tts.cache`: :class:`~ivr.tts.cache.PromptCache` answers "which file plays this
  prompt" (a recording wins, else the cached rendering) and renders a text once.
* :mod:`ivr.tts.build`: every prompt of every flow, rendered ahead (``ivr prompts build``).
* :mod:`ivr.tts.wavfile`: what prompts need on top of :mod:`ivr.media.wav` (which reads,
  writes and resamples): errors that say the fix, converting a recording, a complete file.

Importing this package loads nothing heavy; pyttsx3, espeak-ng and pypinyin start on first use.
"""
