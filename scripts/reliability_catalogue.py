"""Rewrite the catalogue table of docs/reliability.md from the cases in tests/unit/test_catalogue.py.

.venv/bin/python scripts/reliability_catalogue.py          # rewrite the table
.venv/bin/python scripts/reliability_catalogue.py --check  # exit 1 when the doc is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the doc is up to date")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.unit.test_catalogue import DOC, END, START, documented_table, render_table

    table = render_table()
    if args.check:
        if documented_table(DOC) != table:
            sys.stderr.write(f"{DOC} is out of date: run {Path(__file__).name}\n")
            return 1
        return 0
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{table}{END}{tail}", encoding="utf-8")
    sys.stdout.write(f"{DOC}: {table.count(chr(10)) - 2} cases\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
