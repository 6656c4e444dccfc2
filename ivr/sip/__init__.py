"""Our own SIP user agent: wire formats (this package's pure modules), transactions, dialogs.

The wire-format modules never touch a socket: ``message`` parses and serializes SIP messages,
``validate`` says what a UAS must answer to a request it cannot take, ``sdp`` and
``offer_answer`` handle the session descriptions of a G.711 endpoint.
"""
