"""Python actions for the bank flows (``action: {python: "bank_actions:<function>"}``).

Each function receives the node's rendered ``args`` as a dict and returns a dict; raising takes
the node's ``on_error``.
"""

from __future__ import annotations

import re
from typing import Any

# Numbers registered to business customers' switchboards (longest prefix wins). Callers from
# these reach the business banking team with a higher priority even before they identify.
BUSINESS_PREFIXES: dict[str, str] = {
    "+86108888": "corporate",
    "+8610666": "corporate",
    "+86215555": "small_business",
    "+8675512": "small_business",
}

_SIP_USER = re.compile(r"^sips?:([^@;]+)")


def normalise_number(raw: str) -> str:
    """``"sip:+86 21-5555 0101@pbx"`` -> ``"+862155550101"``; ``0086...`` -> ``+86...``.

    Raises:
        ValueError: the caller's number is withheld or is not a phone number.
    """
    text = raw.strip()
    sip = _SIP_USER.match(text)
    if sip:
        text = sip.group(1)
    text = re.sub(r"[\s\-().]", "", text)
    if text.startswith("00"):
        text = "+" + text[2:]
    if not re.fullmatch(r"\+?\d{5,15}", text):
        raise ValueError("caller number withheld or not a phone number")
    return text


def segment_for_number(args: dict[str, Any]) -> dict[str, Any]:
    """The customer segment a caller's number belongs to: ``{"segment": ...}``.

    Args:
        args: ``{"number": caller number}``.
    """
    number = normalise_number(str(args.get("number") or ""))
    for prefix in sorted(BUSINESS_PREFIXES, key=len, reverse=True):
        if number.startswith(prefix):
            return {"segment": BUSINESS_PREFIXES[prefix], "number": number}
    return {"segment": "retail", "number": number}
