"""RTP wire formats: the packet (RFC 3550) and telephone events (RFC 4733).

Pure modules: nothing here opens a socket or reads a clock; the transport feeds bytes in and
sends the bytes that come out.
"""
