"""Writes tests/scripts/stubs.yaml from ivr/demo/bank_api.py (run by hand when the demo changes)."""
# Usage: .venv/bin/python scripts/gen_bank_stubs.py > tests/scripts/stubs.yaml
import json
from ivr.demo import bank_api as b

def q(v): return json.dumps(v, ensure_ascii=False)
def flow(d): return "{" + ", ".join(f"{k}: {q(v) if not isinstance(v, dict) else flow(v)}" for k, v in d.items()) + "}"

out = []
w = out.append
w("# The demo bank API (ivr/demo/bank_api.py, tests/scripts/README.md) as stubs: every script in")
w("# this folder uses them, so `ivr test` needs no backend (docs/TESTING.md \"Stubs\"). A request")
w("# none of them matches runs for real. tests/test_sim_stubs.py checks them against the demo API.")
w("stubs:")
w("  /verify:")
for acct, c in b.CUSTOMERS.items():
    if acct == b.VERIFY_DOWN:
        w(f"    - {{when: {{account: \"{acct}\"}}, status: 503, result: {{error: maintenance}}}}")
        continue
    st, body = b.verify({"account": acct, "pin": c.pin})
    w(f"    - {{when: {{account: \"{acct}\", pin: \"{c.pin}\"}}, result: {flow(body)}}}")
    w(f"    - {{when: {{account: \"{acct}\"}}, result: {{error: bad_pin}}}}")
w("    - {status: 404, result: {error: unknown_account}}")
w("  /balance:")
for acct, c in b.CUSTOMERS.items():
    res = {"available": c.available, "currency": "CNY"}
    if acct == b.FAILING:
        w(f"    - {{when: {{account: \"{acct}\"}}, status: 500, result: {{error: internal}}}}")
    elif acct == b.SLOW:
        w(f"    - {{when: {{account: \"{acct}\"}}, latency: {b.SLOW_SECONDS:g}, result: {flow(res)}}}")
    elif acct == b.BROKEN:
        w(f"    - {{when: {{account: \"{acct}\"}}, error: invalid JSON reply}}")
    else:
        w(f"    - {{when: {{account: \"{acct}\"}}, result: {flow(res)}}}")
w("    - {status: 404, result: {error: unknown_account}}")
w("  /card/block:")
for acct, c in b.CUSTOMERS.items():
    if acct == b.FAILING:
        w(f"    - {{when: {{account: \"{acct}\"}}, status: 500, result: {{error: internal}}}}")
        continue
    for card in c.cards:
        st, body = b.block_card({"account": acct, "card_last4": card})
        w(f"    - {{when: {{account: \"{acct}\", card_last4: \"{card}\"}}, result: {flow(body)}}}")
    w(f"    - {{when: {{account: \"{acct}\"}}, result: {{error: unknown_card}}}}")
w("    - {status: 404, result: {error: unknown_account}}")
w("  /loan/repay:                 # amounts the scripts use; any other runs for real")
for acct, c in b.CUSTOMERS.items():
    if acct == b.FAILING:
        w(f"    - {{when: {{account: \"{acct}\"}}, status: 500, result: {{error: internal}}}}")
        continue
    if acct != b.RETAIL:
        continue
    for amount in ("100.00", "500.00", "1000.00", "6000.00"):
        st, body = b.repay_loan({"account": acct, "amount": amount})
        w(f"    - {{when: {{account: \"{acct}\", amount: \"{amount}\"}}, result: {flow(body)}}}")
print("\n".join(out))
