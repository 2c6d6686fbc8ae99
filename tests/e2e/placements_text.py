#!/usr/bin/env python3
"""placements_text.py NORMSCOPE: `normscope placements` says when a language model adds a final
norm, row by row, as the program builds it (core/lm.c: when the last block's row has
final_norm). A row of one structure says so plainly when it has one and says nothing when not;
mixln, a schedule of post and pre, says the norm comes only when its last block is pre (at
--post-fraction 1 every block is post and there is none; test_model checks the LM itself).
Prints only failures and a summary line; exits 1 on any failure."""
import json
import subprocess
import sys

PHRASE = "; a language model adds a final norm"


def main():
    binary = sys.argv[1]
    table = json.loads(subprocess.run([binary, "placements", "--json"], check=True,
                                      capture_output=True, text=True).stdout)["placements"]
    text = subprocess.run([binary, "placements"], check=True, capture_output=True,
                          text=True).stdout
    blocks = {b.split(" ", 1)[0]: b for b in text.strip().split("\n\n")}
    failures = []
    for p in table:
        lines = blocks.get(p["name"], "").splitlines()
        last = lines[-1] if lines else ""
        if p["name"] == "mixln":
            want = PHRASE + " when its last block is pre"
        else:
            want = PHRASE if p["final_norm"] else ""
        ok = last.endswith(want) and (want or PHRASE not in last)
        if not ok:
            failures.append(p["name"])
            print(f"FAIL {p['name']}: {last!r} should end with {want!r}")
    print(f"placements_text: {len(table)} rows, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
