"""Our own SIP user agent: wire formats (this package's pure modules), transactions, dialogs.

The wire-format modules never touch a socket: ``message`` parses and serializes SIP messages,
``validate`` says what a UAS must answer to a request it cannot take, ``sdp`` and
``offer_answer`` handle the session descriptions of a G.711 endpoint, ``digest`` and
``dtmf_info`` read challenges and INFO bodies.

On top of them, on asyncio: ``transport`` (UDP), ``transaction``/``client_tx``/``tx_layer``
(RFC 3261 §17), ``dialog`` (§12), and the user agent ``ua`` (:class:`ivr.sip.ua.UserAgent`,
calls as :class:`ivr.sip.call.SipCall`) with its parts ``ua_invite``, ``ua_dialog``,
``transfer`` (REFER) and ``register`` (REGISTER with digest).
"""
