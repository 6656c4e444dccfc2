"""Actions of the simulator's test flow (tests/flows/sim/sim-main.yaml)."""

from __future__ import annotations

from typing import Any


def balance(args: dict[str, Any]) -> dict[str, Any]:
    """A fixed balance per account; account 0000 is the one the bank cannot find."""
    if args.get("account") == "0000":
        return {"error": "unknown_account"}
    return {"available": "1024.00", "account": args.get("account")}
