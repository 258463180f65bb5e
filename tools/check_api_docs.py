"""Every public function and class of both packages is in the built API reference (docs/_build/html).

    python tools/check_api_docs.py [docs/_build/html]      # after `make docs`; exit 1 names what is missing
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from pathlib import Path

from sphinx.util.inventory import InventoryFile


def public_objects(package: str) -> set[str]:
    """``module.name`` of every public class and function defined in ``package``'s modules."""
    found = set()
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, f"{package}."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if getattr(obj, "__module__", None) == info.name:
                found.add(f"{info.name}.{name}")
    return found


def main() -> int:
    html = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/_build/html")
    with open(html / "objects.inv", "rb") as f:
        inventory = InventoryFile.load(f, "", lambda base, uri: uri)
    documented = {name for kind in ("py:class", "py:function", "py:exception") for name in inventory.get(kind, {})}
    wanted = public_objects("bci_stream") | public_objects("offline_training")
    missing = sorted(wanted - documented)
    print(f"{len(wanted) - len(missing)} of {len(wanted)} public classes and functions are in the API reference")
    for name in missing:
        print(f"  missing: {name}")
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
