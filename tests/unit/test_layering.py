"""The tracker emulators stay out of the production code's way.

`bridge_sandbox` ships in the same distribution, for `bridge demo` and `bridge sandbox ...`, but only two
modules may import it, and only inside functions: `bridge.demo` and the CLI's sandbox commands
(`bridge.cli.demo_cmds`). Any other module of `bridge` or of the connectors that can reach it, directly
or through other modules (at module level or inside a function; imports under `if TYPE_CHECKING:` do
not count), would load ~8,000 lines of emulators into the daemon or into every command. A path may end
in a gateway: `bridge.cli` registers the demo command, whose body calls `bridge.demo`.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "bridge": ROOT / "src" / "bridge",
    "bridge_jira": ROOT / "connectors" / "bridge_jira",
    "bridge_trello": ROOT / "connectors" / "bridge_trello",
    "bridge_asana": ROOT / "connectors" / "bridge_asana",
}
SANDBOX = ("bridge_sandbox", "bridge.sandbox")
"""The emulators' package, and where it lived inside `bridge` before it moved out."""
GATEWAYS = frozenset({"bridge.demo", "bridge.cli.demo_cmds"})
"""The only modules that may import the sandbox (inside functions only)."""


@dataclass(frozen=True)
class Import:
    """One module naming another in an import statement."""

    target: str
    line: int
    at_module_level: bool


def modules(packages: dict[str, Path]) -> dict[str, Path]:
    """Every module of the packages, by dotted name."""
    found: dict[str, Path] = {}
    for package, folder in packages.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def is_sandbox(name: str) -> bool:
    return any(name == root or name.startswith(root + ".") for root in SANDBOX)


def imports(name: str, path: Path, known: set[str]) -> Iterator[Import]:
    """What a module imports at run time: absolute and relative imports, at module level and in
    functions, `importlib.import_module` with a literal (or f-string's literal prefix) name; with each
    package the import runs on the way (`import a.b.c` runs `a` and `a.b` first)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def named(target: str, line: int, top: bool) -> Iterator[Import]:
        parts = target.split(".")
        for end in range(1, len(parts) + 1):
            yield Import(".".join(parts[:end]), line, top)

    def visit(node: ast.AST, top: bool) -> Iterator[Import]:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from visit(child, top)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from named(alias.name, node.lineno, top)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            yield from named(base, node.lineno, top)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in known:
                    yield Import(submodule, node.lineno, top)
        elif isinstance(node, ast.Call) and _is_import_module(node.func) and node.args:
            literal = _literal_prefix(node.args[0])
            if literal:
                yield from named(literal, node.lineno, top)
        inside = top and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            yield from visit(child, inside)

    yield from visit(tree, True)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _is_import_module(func: ast.expr) -> bool:
    return (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id == "import_module"
    )


def _literal_prefix(arg: ast.expr) -> str:
    """A module name given as a literal, or the dotted packages before an f-string's first field."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
        head = str(arg.values[0].value)
        return head.rpartition(".")[0] if "." in head else ""
    return ""


def paths_to_sandbox(packages: dict[str, Path], gateways: frozenset[str]) -> list[str]:
    """For each module that can reach the sandbox other than through a gateway, one shortest path of
    imports to it; and each gateway's import of the sandbox at module level."""
    known = modules(packages)
    graph: dict[str, list[Import]] = {
        name: [i for i in imports(name, path, set(known)) if i.target != name] for name, path in known.items()
    }
    problems = []
    for gateway in sorted(gateways & set(graph)):
        by_line: dict[int, str] = {}
        for found in graph[gateway]:
            if is_sandbox(found.target) and found.at_module_level:
                by_line[found.line] = max(by_line.get(found.line, ""), found.target, key=len)
        for line, target in sorted(by_line.items()):
            problems.append(f"{gateway} imports {target} at module level (line {line})")
    for start in sorted(graph):
        if start in gateways:
            continue
        came_from: dict[str, str | None] = {start: None}
        queue = deque([start])
        while queue:
            current = queue.popleft()
            for found in graph.get(current, []):
                if found.target in came_from or found.target in gateways:
                    continue
                came_from[found.target] = current
                if is_sandbox(found.target):
                    chain: list[str] = [found.target]
                    step: str | None = current
                    while step is not None:
                        chain.append(step)
                        step = came_from[step]
                    problems.append(" -> ".join(reversed(chain)))
                    queue.clear()
                    break
                if found.target in graph:
                    queue.append(found.target)
    return problems


def test_only_the_demo_and_the_sandbox_commands_can_reach_the_sandbox() -> None:
    problems = paths_to_sandbox(PACKAGES, GATEWAYS)
    assert not problems, "modules that reach the tracker emulators:\n" + "\n".join(problems)


def test_the_walk_finds_a_path_through_a_function_level_import(tmp_path: Path) -> None:
    package = tmp_path / "bridge"
    (package / "report").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "report" / "__init__.py").write_text("from . import pages\n")
    (package / "report" / "pages.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from bridge_sandbox.server import SandboxServer\n"
        "def page():\n    from ..demo import start_sandbox\n"
    )
    (package / "demo.py").write_text("def start_sandbox():\n    from bridge_sandbox import server\n")
    (package / "daemon.py").write_text("def serve():\n    import bridge_sandbox.jira\n")

    assert paths_to_sandbox({"bridge": package}, frozenset({"bridge.demo"})) == [
        "bridge.daemon -> bridge_sandbox"
    ]
    assert paths_to_sandbox({"bridge": package}, frozenset()) == [
        "bridge.daemon -> bridge_sandbox",
        "bridge.demo -> bridge_sandbox",
        "bridge.report -> bridge.report.pages -> bridge.demo -> bridge_sandbox",
        "bridge.report.pages -> bridge.demo -> bridge_sandbox",
    ]


def test_the_cli_loads_no_emulator_until_a_sandbox_command_runs() -> None:
    probe = (
        "import sys\n"
        "from bridge.cli import app\n"
        "for args in (['--help'], ['sandbox', '--help'], ['sandbox', 'serve', '--help']):\n"
        "    try:\n"
        "        app(args=args, prog_name='bridge')\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('bridge_sandbox', 'bridge.sandbox'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]", result.stdout


def test_the_emulators_are_not_in_the_bridge_package() -> None:
    assert not (PACKAGES["bridge"] / "sandbox").exists()
