"""The pyVoIP transport: the engine as an extension registered to a PBX, over pyVoIP 1.6.8.

:mod:`ivr.pyvoip.phone` wraps pyVoIP's phone and calls with types; :mod:`ivr.pyvoip.pump` is the
per-call media loop on pyVoIP's call thread; :mod:`ivr.pyvoip.channel` is the engine's
:class:`~ivr.engine.channel.Channel` over it; :mod:`ivr.pyvoip.server` wires flows, prompts and
call records to registered calls. pyVoIP's limits (no calls without a registrar, no REFER or
INFO, threads per call, ~1 s answer delay) are measured in the README's "Transports" section.
"""
