"""Module boundaries: no module imports another's private names, and linkage.link has no import cycle.

Read from the source (every import statement, including those inside functions), so a lazy import
that closes a cycle counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "linkage"


def _module_name(path: Path, root: Path = REPO) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path = REPO) -> list[tuple[str, list[str]]]:
    """(module imported from, names imported) for every import in a file; relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path, root).split(".")
    if path.name != "__init__.py":
        here = here[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            out.append((base, [alias.name for alias in node.names]))
    return out


def private_imports(files: list[Path], root: Path = REPO) -> list[str]:
    found = []
    for path in files:
        for module, names in _imports(path, root):
            if not module.startswith("linkage"):
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            private += [p for p in module.split(".") if p.startswith("_") and not p.startswith("__")]
            found += [f"{path.relative_to(root).as_posix()}: {module}.{n}" for n in private]
    return found


def import_graph(package: Path, prefix: str, root: Path = REPO) -> dict[str, set[str]]:
    modules = {_module_name(p, root): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for module, names in _imports(path, root):
            targets = [f"{module}.{n}" for n in names if f"{module}.{n}" in modules] or [module]
            graph[name] |= {t for t in targets if t in modules and t != name and t.startswith(prefix)}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_module_imports_another_modules_private_names() -> None:
    # tests too: a test that reaches for a private helper pins an implementation, not behaviour
    files = [*PACKAGE.rglob("*.py"), *(REPO / "bench").glob("*.py"), *(REPO / "tests").rglob("*.py")]
    assert private_imports(files) == []


def test_link_package_has_no_import_cycle() -> None:
    graph = import_graph(PACKAGE / "link", "linkage.link")
    assert "linkage.link.job" in graph and "linkage.link.backends.spark" in graph
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_backends_do_not_import_each_other_or_the_job() -> None:
    graph = import_graph(PACKAGE / "link", "linkage.link")
    for backend in ("linkage.link.backends.duckdb", "linkage.link.backends.spark"):
        assert not graph[backend] & {"linkage.link.backends.duckdb", "linkage.link.backends.spark",
                                     "linkage.link.job", "linkage.link.run"}, backend


def test_backends_take_the_engine_neutral_steps_from_the_shared_base() -> None:
    """Each engine class subclasses ``SplinkBackend`` and does not write register/train/predict_chunks again
    (the copies this replaced had started to drift); read from the source, so pyspark is not needed."""
    shared = {"register", "train", "predict_chunks", "scored_slices"}
    for module in ("duckdb", "spark"):
        tree = ast.parse((PACKAGE / "link" / "backends" / f"{module}.py").read_text(encoding="utf-8"))
        engines = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name.endswith("Backend")]
        assert engines, module
        for cls in engines:
            assert [ast.unparse(b) for b in cls.bases] == ["SplinkBackend"], (module, cls.name)
            written = {f.name for f in cls.body if isinstance(f, ast.FunctionDef)}
            assert not written & shared, (module, cls.name, written & shared)
            assert {"load_tokens", "predict", "export", "close"} <= written, (module, cls.name)


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """Weakened code (a private import, a lazy import closing a cycle) is caught: the tests above can fail."""
    pkg = tmp_path / "linkage" / "link"
    pkg.mkdir(parents=True)
    (tmp_path / "linkage" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from linkage.link.b import helper\n")
    (pkg / "b.py").write_text("def helper():\n    from linkage.link.a import _secret\n")
    assert private_imports(sorted(pkg.glob("*.py")), tmp_path) == ["linkage/link/b.py: linkage.link.a._secret"]
    graph = import_graph(pkg, "linkage.link", tmp_path)
    assert find_cycle(graph) == ["linkage.link.a", "linkage.link.b", "linkage.link.a"]
    (pkg / "b.py").write_text("def helper():\n    pass\n")
    assert find_cycle(import_graph(pkg, "linkage.link", tmp_path)) is None
