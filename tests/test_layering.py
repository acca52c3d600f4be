"""The package layout keeps its promises: the runtime never reaches into training, the voice registry
never loads torch, and no two modules import each other (directly or round a longer loop).

Static checks read every import statement, those inside functions included; the run-time checks
import the entry points in a fresh interpreter and look at what got loaded.
"""

import ast
import re
import subprocess
import sys
from pathlib import Path

import myna

SRC = Path(myna.__file__).resolve().parent
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
RUNTIME_PACKAGES = ("text", "audio", "features", "models", "engine", "voices", "server", "weights")
TRAINING = re.compile(r"myna\.train(\.\w+)*")


def _module_name(path: Path, root: Path, prefix: str) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((prefix, *parts)) if prefix else ".".join(parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes inside `if TYPE_CHECKING:` blocks (imports for annotations only, never executed)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(child) for statement in node.body for child in ast.walk(statement))
    return inside


def _imported_names(path: Path, module: str, executed_only: bool = False) -> set[str]:
    """Every module name an import statement in `path` names (relative imports resolved), at any depth,
    plus string constants that spell a module of myna.train (as passed to importlib). `executed_only`
    leaves out the imports under `if TYPE_CHECKING:`, which Python never runs."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    skipped = _type_checking_nodes(tree) if executed_only else set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and TRAINING.fullmatch(node.value):
            names.add(node.value)
    return names


def _runtime_sources() -> list[Path]:
    """Runtime code: the runtime packages, the top-level modules and every command but `train`/`data`."""
    files = [p for name in RUNTIME_PACKAGES if (SRC / name).is_dir() for p in (SRC / name).rglob("*.py")]
    files += [p for p in SRC.glob("*.py")]
    files += [p for p in (SRC / "cli").glob("*.py") if p.name != "train.py"]
    return sorted(files)


def test_runtime_code_never_imports_training():
    offenders = {}
    for path in _runtime_sources():
        module = _module_name(path, SRC, "myna")
        found = sorted(name for name in _imported_names(path, module) if TRAINING.fullmatch(name))
        if found:
            offenders[str(path.relative_to(SRC))] = found
    assert offenders == {}, "runtime modules import myna.train (move the shared piece to a runtime package)"


def _run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip()


def test_runtime_entry_points_load_no_training_code():
    code = f"""
import importlib, pkgutil, sys
import myna
from myna import ModelPaths, SynthesisOptions, Synthesizer, load_model  # the Python API
from myna.cli import build_parser
build_parser()  # the `myna` command with every subcommand registered
for name in {RUNTIME_PACKAGES!r}:
    try:
        package = importlib.import_module("myna." + name)
    except ModuleNotFoundError:
        continue
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
print(sorted(m for m in sys.modules if m == "myna.train" or m.startswith("myna.train.")))
"""
    assert _run(code) == "[]"


def test_the_voice_registry_never_loads_torch():
    code = """
import importlib, pkgutil, sys
import myna.voices
for info in pkgutil.walk_packages(myna.voices.__path__, "myna.voices."):
    importlib.import_module(info.name)
print("torch" in sys.modules, sorted(m for m in sys.modules if m.startswith("myna.voices.")))
"""
    loaded, modules = _run(code).split(" ", 1)
    assert loaded == "False" and "myna.voices.registry" in modules


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def _import_graph(root: Path, prefix: str) -> dict[str, set[str]]:
    modules = {_module_name(p, root, prefix): p for p in root.rglob("*.py")}
    graph = {}
    for module, path in modules.items():
        # an annotation-only import cannot make a loop at run time (the cycle to avoid is two modules
        # each needing the other loaded first); every other check reads those imports too
        names = _imported_names(path, module, executed_only=True)
        if not prefix:  # benchmarks import each other by file name, or as benchmarks.NAME
            names |= {n.removeprefix("benchmarks.") for n in names}
        # a module's own parent packages always load before it: not a cycle of the design
        graph[module] = {n for n in names if n in modules and n != module and not module.startswith(n + ".")}
    return graph


def test_no_import_cycles():
    assert _cycles(_import_graph(SRC, "myna")) == []
    assert _cycles(_import_graph(BENCHMARKS, "")) == []
