"""Text a caller chose (a From user, a display name), made safe to log and to store.

A SIP From header may carry ``%0a`` or ``%1b``, which the URI parser decodes: written raw, the
caller forges log lines or sends escape sequences to the terminal of whoever reads the log. Every
control or format character becomes a visible ``\\xNN`` (``\\uNNNN``) escape, and the text is cut
at a length no caller ID needs.
"""

from __future__ import annotations

import unicodedata

#: Longer caller text is cut: no telephone number or SIP user needs more.
MAX_CALLER_TEXT = 128

# Control, format, line/paragraph separators, surrogates and private use: never printed as-is.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def printable(text: str, limit: int = MAX_CALLER_TEXT) -> str:
    """``text`` with every unsafe character escaped, at most ``limit`` characters (+ "...").

    Args:
        text: Caller-controlled text.
        limit: How many characters of ``text`` to keep.

    Returns:
        A single printable line; plain text comes back unchanged.
    """
    cut = text[:limit]
    safe = cut if cut.isprintable() else "".join(_escape(ch) for ch in cut)
    return safe + "..." if len(text) > limit else safe


def _escape(ch: str) -> str:
    if ch == " " or unicodedata.category(ch) not in _UNSAFE_CATEGORIES:
        return ch
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


#: Longest file-name stem made from caller text (a Call-ID may be far longer than a file name).
MAX_FILE_STEM = 96


def file_stem(text: str) -> str:
    """``text`` (a Call-ID: the caller's choice, and ``/`` and ``..`` are legal in it) as a
    file-name stem that stays in its folder: letters, digits, ``-``, ``_``, ``.`` and ``@``,
    anything else ``_``, no leading dot, at most :data:`MAX_FILE_STEM` characters."""
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in "-_.@" else "_" for c in text)
    safe = safe[:MAX_FILE_STEM]
    return "_" + safe[1:] if not safe or safe.startswith(".") else safe
