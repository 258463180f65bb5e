"""The package's structure: no import circles, the live path free of Qt and of the trainer."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_imports(package: str) -> dict[str, set[str]]:
    """Imports between modules of ``package``, those inside functions too (a late import hides a
    circle; it does not remove it)."""
    graph = {}
    base = ROOT / package
    for path in base.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                deps.add(node.module)
                deps.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[name] = {d for d in deps if d.startswith(package)}
    return {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}


def test_no_import_circles_in_bci_stream():
    graph = module_imports("bci_stream")
    seen, stack, cycles = set(), [], []

    def visit(m):
        if m in stack:
            cycles.append(stack[stack.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for d in sorted(graph[m]):
            visit(d)
        stack.pop()

    for m in sorted(graph):
        visit(m)
    assert not cycles, f"import circles: {cycles[:3]}"


def test_live_path_imports_neither_qt_nor_torch_nor_the_trainer():
    code = ("import sys, bci_stream.live.session, bci_stream.viewer.decoding_process, bci_stream.cli;"
            "print(sorted(m for m in ('PyQt6', 'pyqtgraph', 'torch', 'offline_training') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", out.stdout
