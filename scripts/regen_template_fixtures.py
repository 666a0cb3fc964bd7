"""Add golden-prompt and hash fixtures for NEW template versions.

    .venv/bin/python scripts/regen_template_fixtures.py

Existing entries are never rewritten: if a shipped version's hash changed, the script stops and
says which one (a change must be a new version file).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.unit.test_templates import _rendered  # noqa: E402

from claimflow.prompts import TemplateRegistry  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"


def main() -> int:
    hashes_path, golden_path = FIXTURES / "template_hashes.json", FIXTURES / "golden_prompts.json"
    hashes = json.loads(hashes_path.read_text(encoding="utf-8")) if hashes_path.exists() else {}
    golden = json.loads(golden_path.read_text(encoding="utf-8")) if golden_path.exists() else {}
    changed, added = [], []
    for template in TemplateRegistry(include_env=False).all():
        key = f"{template.id}@{template.version}"
        if key in hashes:
            if hashes[key] != template.hash:
                changed.append(key)
            continue
        hashes[key] = template.hash
        golden[key] = _rendered(template)
        added.append(key)
    if changed:
        sys.stderr.write(f"shipped templates were edited: {changed}; restore them and add new versions instead\n")
        return 1
    hashes_path.write_text(json.dumps(dict(sorted(hashes.items())), indent=2) + "\n", encoding="utf-8")
    golden_path.write_text(
        json.dumps(dict(sorted(golden.items())), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    sys.stdout.write(f"added {len(added)}: {added}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
