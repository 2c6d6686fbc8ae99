"""placement_literals.py NORMSCOPE SOURCE_DIR: the placement table (core/placement.c) is the only
place that knows a placement. Fails if a placement name, as `normscope placements --json` lists
them, is a string literal (alone or in a comma list) in the program's code outside the table:
C sources and headers of core/, analysis/ and plots/, and the notebooks' Python helper. Tests,
documents, notebooks and recipes (which only use names, as a user does) are not searched."""
import json
import pathlib
import re
import subprocess
import sys

C_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
C_COMMENT = re.compile(r'/\*.*?\*/|//[^\n]*', re.S)  # a comment may quote a name
PY_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"|\'((?:[^\'\\\n]|\\.)*)\'')
TABLE = pathlib.Path("core/placement.c")


def offenders(text, pattern, names):
    """(line, literal) for every literal that is a placement name or a comma list holding one"""
    out = []
    for m in pattern.finditer(text):
        literal = next(g for g in m.groups() if g is not None)
        if any(part.strip() in names for part in literal.split(",")):
            out.append((text.count("\n", 0, m.start()) + 1, literal))
    return out


def main():
    binary, root = sys.argv[1], pathlib.Path(sys.argv[2])
    table = json.loads(subprocess.run([binary, "placements", "--json"], check=True,
                                      capture_output=True, text=True).stdout)
    names = {p["name"] for p in table["placements"]}
    failed = 0
    # the check itself must catch what it is for
    probe = offenders('x = ns_placement_find("%s"); y = "a,%s";' % ((sorted(names)[0],) * 2),
                      C_STRING, names)
    if len(probe) != 2 or offenders('"the pre-norm stream"', C_STRING, names):
        print("FAIL the literal scanner does not see what it should")
        failed += 1
    files = [f for d in ("core", "analysis", "plots") for f in sorted((root / d).rglob("*"))
             if f.suffix in (".c", ".h") and f.relative_to(root) != TABLE]
    files.append(root / "notebooks" / "nslib.py")
    for f in files:
        text = f.read_text()
        if f.suffix != ".py":  # keep the line count: a comment becomes its newlines
            text = C_COMMENT.sub(lambda m: "\n" * m.group().count("\n"), text)
        pattern = PY_STRING if f.suffix == ".py" else C_STRING
        for line, literal in offenders(text, pattern, names):
            print('FAIL %s:%d: "%s" names a placement outside %s'
                  % (f.relative_to(root), line, literal, TABLE))
            failed += 1
    print("placement_literals: %d files searched, %d passed, %d failed"
          % (len(files), len(files) if not failed else 0, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
