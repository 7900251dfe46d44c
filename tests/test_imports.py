"""Every module of the five packages imports on its own, first, in a fresh interpreter state: an
import cycle that only bites when a module is loaded before another (e.g. the console's wizard before
the CLI) fails here, not in an operator's hands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("chain", "consensus", "node", "gateway", "genesis")

# One child interpreter: before each module, every module of the five packages is forgotten, so each
# is imported as if it were the program's first import of the project.
CHILD = """
import importlib, sys
names = sys.argv[1:]
failed = []
for name in names:
    for loaded in [m for m in sys.modules if m.split(".")[0] in {packages!r}]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{{name}}: {{type(exc).__name__}}: {{exc}}")
print("\\n".join(failed))
"""


def project_modules() -> list[str]:
    names = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__main__":
                continue
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_module_imports_first_on_its_own() -> None:
    modules = project_modules()
    assert len(modules) > 100 and "node.console.wizard" in modules
    result = subprocess.run([sys.executable, "-c", CHILD.format(packages=set(PACKAGES)), *modules], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", "modules that cannot be imported first:\n" + result.stdout
