"""The import layering of vcbench (docs/ARCHITECTURE.md, "Layers"), checked over the ast import graph.

Layers, lowest first; a module may import its own group and the groups listed for it:

    plumbing   errors hashing atomic lock download options executors frames lab weights
               registry devices paths stills ids labels citations, and `vcbench` itself (version constants)
    flow, retrieval                      -> plumbing
    metrics, baselines                   -> plumbing, flow
    benchmarks                           -> plumbing
    trainset (the training-set builder)  -> plumbing, flow, retrieval
    reports                              -> plumbing, metrics.registry, metrics.result (torch-free)
    harness (evaluate.py)                -> everything above but trainset
    tooling (cli, random_weights, __main__) -> anything

Three rules, each against an explicit list of what is true today; the lists may only shrink:
1. no import crosses the layers upward (`KNOWN_VIOLATIONS`, pairs of modules);
2. no import cycle between modules, lazy imports included (`KNOWN_CYCLES`);
3. an import of a vcbench module inside a function carries a `# lazy: <reason>` comment on its line
   or the line above (an optional dependency, a PEP 562 export hub, CLI start-up time);
   `KNOWN_LAZY` lists today's unannotated ones per file.
A new breach fails; an entry that no longer holds fails too, asking for its deletion. Run
`python3 tests/test_layering.py` to print the current lists.

The graph cannot see `importlib.import_module("vcbench...")` strings (registries, export hubs).
"""

from __future__ import annotations

import ast
import collections
import functools
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vcbench"

PLUMBING = {"errors", "hashing", "atomic", "lock", "download", "options", "executors", "frames", "lab",
            "weights", "registry", "devices", "paths", "stills", "ids", "labels", "citations"}
PACKAGES = {"flow", "retrieval", "metrics", "baselines", "benchmarks", "trainset", "reports"}
ALLOWED: dict[str, set[str]] = {
    "plumbing": {"plumbing"},
    "flow": {"plumbing", "flow"},
    "retrieval": {"plumbing", "retrieval"},
    "metrics": {"plumbing", "flow", "metrics"},
    "baselines": {"plumbing", "flow", "baselines"},
    "benchmarks": {"plumbing", "benchmarks"},
    "trainset": {"plumbing", "flow", "retrieval", "trainset"},
    "reports": {"plumbing", "reports", "vcbench.metrics.registry", "vcbench.metrics.result"},
    "harness": {"plumbing", "flow", "retrieval", "metrics", "baselines", "benchmarks", "reports"},
}

# ------------------------------------------------------------------ today's state (may only shrink)
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()

KNOWN_CYCLES: set[tuple[str, ...]] = set()

KNOWN_LAZY: dict[str, tuple[str, ...]] = {}


# ---------------------------------------------------------------------------------- the graph
def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def group(module: str) -> str:
    """The layer group of a vcbench module; a module no rule places fails, so it must be placed."""
    parts = module.split(".")
    if module == "vcbench":
        return "plumbing"
    top = parts[1]
    if len(parts) == 2 and top in PLUMBING:
        return "plumbing"
    if top in ("cli", "random_weights", "__main__"):
        return "tooling"
    if top == "evaluate":
        return "harness"
    if top in PACKAGES:
        return top
    raise AssertionError(f"{module}: no layer places it; add it to tests/test_layering.py's groups")


class Import:
    """One import statement's vcbench target, where it is, and whether it is lazy or type-only."""

    def __init__(self, src: str, dst: str, line: int, end: int, lazy: bool, type_only: bool):
        self.src, self.dst, self.line, self.end, self.lazy, self.type_only = src, dst, line, end, lazy, type_only


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        lazy = type_only = False
        up = node
        while up in parents:
            up = parents[up]
            if isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                lazy = True
            if isinstance(up, ast.If) and "TYPE_CHECKING" in ast.unparse(up.test):
                type_only = True
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = _resolve(module, path.name == "__init__.py", node)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for dst in dict.fromkeys(targets):
            if dst == "vcbench" or dst.startswith("vcbench."):
                while dst not in MODULES and "." in dst:  # `import vcbench.x.y` of a name, not a module
                    dst = dst.rsplit(".", 1)[0]
                out.append(Import(module, dst, node.lineno, node.end_lineno or node.lineno, lazy, type_only))
    return out


@functools.lru_cache(maxsize=1)
def all_imports() -> list[Import]:
    return [imp for module, path in MODULES.items() for imp in imports_of(module, path)]


def violations(imports: list[Import]) -> set[tuple[str, str]]:
    out = set()
    for imp in imports:
        src = group(imp.src)
        if src == "tooling":
            continue
        allowed = ALLOWED[src]
        if group(imp.dst) not in allowed and imp.dst not in allowed:
            out.add((imp.src, imp.dst))
    return out


def cycles(imports: list[Import]) -> set[tuple[str, ...]]:
    """Strongly connected components (more than one module) of the runtime import graph."""
    graph: dict[str, set[str]] = collections.defaultdict(set)
    for imp in imports:
        if not imp.type_only and imp.src != imp.dst:
            graph[imp.src].add(imp.dst)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[tuple[str, ...]] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.add(tuple(sorted(comp)))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(MODULES):
        if v not in index:
            visit(v)
    return found


def annotated(lines: list[str], imp: Import) -> bool:
    """A `# lazy:` comment on one of the statement's lines or on the line above it."""
    return any("# lazy:" in line for line in lines[max(imp.line - 2, 0): imp.end])


def unannotated_lazy(imports: list[Import]) -> dict[str, collections.Counter]:
    """Per file (relative to the repository), the vcbench modules imported inside a function without a
    `# lazy:` comment on the statement's lines or the line above."""
    lines = {m: p.read_text(encoding="utf-8").splitlines() for m, p in MODULES.items()}
    out: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    seen = set()
    for imp in imports:
        if not imp.lazy or imp.type_only or (imp.src, imp.line, imp.dst) in seen:
            continue
        seen.add((imp.src, imp.line, imp.dst))
        if not annotated(lines[imp.src], imp):
            out[MODULES[imp.src].relative_to(ROOT).as_posix()][imp.dst] += 1
    return dict(out)


# ---------------------------------------------------------------------------------- the tests
def test_every_module_has_a_layer():
    for module in MODULES:
        group(module)


def test_no_new_upward_import():
    found = violations(all_imports())
    new = sorted(found - KNOWN_VIOLATIONS)
    assert not new, ("imports that cross the layers upward (docs/ARCHITECTURE.md, Layers); move the code down or import "
                     "the other way: " + "; ".join(f"{s} -> {d}" for s, d in new))


def test_known_upward_imports_still_exist():
    stale = sorted(KNOWN_VIOLATIONS - violations(all_imports()))
    assert not stale, ("these KNOWN_VIOLATIONS no longer occur; delete them from tests/test_layering.py: "
                       + "; ".join(f"({s!r}, {d!r})" for s, d in stale))


def test_no_new_import_cycle_and_known_ones_remain():
    found = cycles(all_imports())
    new = sorted(found - KNOWN_CYCLES)
    stale = sorted(KNOWN_CYCLES - found)
    assert not new, f"new import cycle(s) between modules (lazy imports included): {new}"
    assert not stale, f"these KNOWN_CYCLES no longer exist as they are listed; delete or update them: {stale}"


def test_no_new_unannotated_lazy_import():
    found = unannotated_lazy(all_imports())
    new, stale = [], []
    for path in sorted(set(found) | set(KNOWN_LAZY)):
        now = found.get(path, collections.Counter())
        known = collections.Counter(KNOWN_LAZY.get(path, ()))
        new += [f"{path}: {m} (x{n})" for m, n in sorted((now - known).items())]
        stale += [f"{path}: {m} (x{n})" for m, n in sorted((known - now).items())]
    assert not new, ("vcbench imports inside a function need `# lazy: <reason>` on the line or the line "
                     "above (an optional dependency, an export hub, CLI start-up), or move to the top: "
                     + "; ".join(new))
    assert not stale, "these KNOWN_LAZY entries are gone; delete them from tests/test_layering.py: " + "; ".join(stale)


def test_the_graph_sees_known_edges():
    """The parser itself: a relative import, a function-level import and a `from vcbench import`."""
    imports = all_imports()
    top = {(i.src, i.dst) for i in imports if not i.lazy}
    assert ("vcbench.metrics.protocol", "vcbench") in top  # from vcbench import PROTOCOL_VERSION
    assert ("vcbench.__main__", "vcbench.cli") in top
    assert any(i.lazy and i.src.startswith("vcbench.cli.") for i in imports)


def test_the_checks_catch_a_breach(tmp_path):
    """An upward import, a lazy one with and without its comment, and a type-only one, in a module
    parsed as if it were vcbench/flow/x.py."""
    src = tmp_path / "x.py"
    src.write_text(textwrap.dedent("""\
        from typing import TYPE_CHECKING
        from vcbench.errors import InputError
        if TYPE_CHECKING:
            from vcbench.reports.db import RunRecord

        def f():
            from vcbench.metrics import suite
            # lazy: an optional dependency
            from ..metrics import scorer
            import vcbench.reports.stats as s
        """), encoding="utf-8")
    found = imports_of("vcbench.flow.x", src)
    by_dst = {i.dst: i for i in found}
    assert set(by_dst) == {"vcbench.errors", "vcbench.reports.db", "vcbench.metrics.suite",
                           "vcbench.metrics.scorer", "vcbench.reports.stats"}
    assert by_dst["vcbench.reports.db"].type_only and not by_dst["vcbench.errors"].lazy
    assert violations(found) == {("vcbench.flow.x", d) for d in
                                 ("vcbench.reports.db", "vcbench.metrics.suite", "vcbench.metrics.scorer",
                                  "vcbench.reports.stats")}
    lines = src.read_text(encoding="utf-8").splitlines()
    assert [annotated(lines, i) for i in found if i.lazy] == [False, True, False]


def _wrapped(head: str, body: str, tail: str) -> str:
    one = head + body + tail
    if len(one) <= 110:
        return one
    lines = textwrap.wrap(body, 100, initial_indent=" " * 8, subsequent_indent=" " * 8)
    return "\n".join([head, *lines, "    " + tail])


def _print_state() -> None:
    imports = all_imports()
    print("KNOWN_VIOLATIONS: set[tuple[str, str]] = {")
    for s, d in sorted(violations(imports)):
        print(f"    ({s!r}, {d!r}),")
    print("}\n\nKNOWN_CYCLES: set[tuple[str, ...]] = {")
    for comp in sorted(cycles(imports)):
        print(_wrapped("    (", ", ".join(map(repr, comp)), "),"))
    print("}\n\nKNOWN_LAZY: dict[str, tuple[str, ...]] = {")
    for path, counter in sorted(unannotated_lazy(imports).items()):
        names = sorted(counter.elements())
        print(_wrapped(f"    {path!r}: (", ", ".join(map(repr, names)) + ("," if len(names) == 1 else ""), "),"))
    print("}")


if __name__ == "__main__":
    _print_state()
