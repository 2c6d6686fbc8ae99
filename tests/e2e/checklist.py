"""checklist.py: the check list every e2e script keeps: check() counts a condition, and prints
and records it when it fails; the script's summary reads `failures` and `nchecks`."""

failures = []
nchecks = 0


def check(cond, what):
    global nchecks
    nchecks += 1
    if not cond:
        failures.append(what)
        print("FAIL: " + what)
    return bool(cond)
