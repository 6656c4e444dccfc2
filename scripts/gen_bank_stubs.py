"""Write tests/scripts/stubs.yaml from the demo bank API (ivr/demo/bank_api.py).

Run by hand when the demo changes::

    .venv/bin/python scripts/gen_bank_stubs.py > tests/scripts/stubs.yaml

Each answer is what the demo itself returns for that request (it is asked, not copied), so the
stubs cannot drift from it; tests/test_sim_stubs.py checks the file against the demo API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ivr.demo import bank_api as bank

HEADER = (
    "# The demo bank API (ivr/demo/bank_api.py, tests/scripts/README.md) as stubs: every script in",
    "# this folder uses them, so `ivr test` needs no backend (docs/TESTING.md \"Stubs\"). "
    "A request",
    "# none of them matches runs for real. tests/test_sim_stubs.py checks them against the "
    "demo API.",
)
#: loan amounts the bank scripts repay; any other amount runs for real
REPAY_AMOUNTS = ("100.00", "500.00", "1000.00", "6000.00")
UNKNOWN_ACCOUNT = "    - {status: 404, result: {error: unknown_account}}"
INTERNAL_ERROR = "status: 500, result: {error: internal}"


def scalar(value: Any) -> str:
    """A YAML scalar (JSON's quoting is valid YAML)."""
    return json.dumps(value, ensure_ascii=False)


def flow_map(mapping: dict[str, Any]) -> str:
    """``mapping`` as a one-line YAML flow mapping."""
    parts = (f"{key}: {flow_map(value) if isinstance(value, dict) else scalar(value)}"
             for key, value in mapping.items())  # fmt: skip
    return "{" + ", ".join(parts) + "}"


def rule(when: dict[str, str], answer: str) -> str:
    """One stub rule: a request matching ``when`` gets ``answer``."""
    match = ", ".join(f'{key}: "{value}"' for key, value in when.items())
    return f"    - {{when: {{{match}}}, {answer}}}"


def verify() -> Iterator[str]:
    yield "  /verify:"
    for account, customer in bank.CUSTOMERS.items():
        if account == bank.VERIFY_DOWN:
            yield rule({"account": account}, "status: 503, result: {error: maintenance}")
            continue
        _, body = bank.verify({"account": account, "pin": customer.pin})
        yield rule({"account": account, "pin": customer.pin}, f"result: {flow_map(body)}")
        yield rule({"account": account}, "result: {error: bad_pin}")
    yield UNKNOWN_ACCOUNT


def balance() -> Iterator[str]:
    yield "  /balance:"
    for account, customer in bank.CUSTOMERS.items():
        result = flow_map({"available": customer.available, "currency": "CNY"})
        if account == bank.FAILING:
            yield rule({"account": account}, INTERNAL_ERROR)
        elif account == bank.SLOW:
            yield rule({"account": account}, f"latency: {bank.SLOW_SECONDS:g}, result: {result}")
        elif account == bank.BROKEN:
            yield rule({"account": account}, "error: invalid JSON reply")
        else:
            yield rule({"account": account}, f"result: {result}")
    yield UNKNOWN_ACCOUNT


def block_card() -> Iterator[str]:
    yield "  /card/block:"
    for account, customer in bank.CUSTOMERS.items():
        if account == bank.FAILING:
            yield rule({"account": account}, INTERNAL_ERROR)
            continue
        for card in customer.cards:
            _, body = bank.block_card({"account": account, "card_last4": card})
            yield rule({"account": account, "card_last4": card}, f"result: {flow_map(body)}")
        yield rule({"account": account}, "result: {error: unknown_card}")
    yield UNKNOWN_ACCOUNT


def repay_loan() -> Iterator[str]:
    yield "  /loan/repay:                 # amounts the scripts use; any other runs for real"
    for account in bank.CUSTOMERS:
        if account == bank.FAILING:
            yield rule({"account": account}, INTERNAL_ERROR)
        elif account == bank.RETAIL:
            for amount in REPAY_AMOUNTS:
                _, body = bank.repay_loan({"account": account, "amount": amount})
                yield rule({"account": account, "amount": amount}, f"result: {flow_map(body)}")


def main() -> None:
    lines = [*HEADER, "stubs:", *verify(), *balance(), *block_card(), *repay_loan()]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
