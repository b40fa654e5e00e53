"""The package's layout stays true: subpackages by concern, imports going
down only, no import circle (module level or inside functions), and every
old import path still reaching what moved."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import coreseg

ROOT = Path(coreseg.__file__).parent

#: The subpackages, lowest first: a module may import its own subpackage and
#: those ranked below it, never one above (README, "Layout").
LAYERS = ["kernels", "files", "drawing", "modelfiles", "results", "frames", "running", "evaluation",
          "scaleout", "cli"]
#: Top-level modules below everything: the compiled extensions and the version.
LEAVES = {"_native", "_coreml", "_version"}
#: The top: the public facade, `python -m coreseg`, and the old paths of
#: modules that moved (each only re-exports; nothing below may import them).
FACADE = {"__init__", "__main__", "reference", "video", "smoothing", "pipeline", "metrics", "groundtruth",
          "monitor", "export", "contract", "demo", "dist"}
#: Old module paths the README names, and where each lives now.
MOVED = {
    "coreseg.reference": "coreseg.kernels.reference",
    "coreseg.video": "coreseg.frames.video",
    "coreseg.smoothing": "coreseg.frames.smoothing",
    "coreseg.pipeline": "coreseg.frames.pipeline",
    "coreseg.metrics": "coreseg.evaluation.metrics",
    "coreseg.groundtruth": "coreseg.evaluation.groundtruth",
    "coreseg.monitor": "coreseg.evaluation.monitor",
    "coreseg.export": "coreseg.files.export",
    "coreseg.contract": "coreseg.modelfiles.contract",
}
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    mods = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = ["coreseg", *rel.parts]
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()
NATIVE = {"coreseg._native", "coreseg._coreml"}


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """(module imported, line) for every import in the file, at any depth,
    resolved to coreseg module names ("from . import x" names module x when
    it is one, else the package)."""
    is_pkg = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "coreseg"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "coreseg":
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                found.append((sub if sub in MODULES or sub in NATIVE else target, node.lineno))
    return found


def _group(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def _rank(module: str) -> int:
    group = _group(module)
    if group in LEAVES:
        return -1
    if group in LAYERS:
        return LAYERS.index(group)
    return len(LAYERS)  # the facade


GRAPH = {m: sorted({t for t, _ in _imports(m, p) if t != m}) for m, p in MODULES.items()}


def test_every_module_belongs_to_a_subpackage_or_is_named_at_the_top():
    stray = [m for m in MODULES if _group(m) not in set(LAYERS) | LEAVES | FACADE]
    assert not stray, f"modules outside the layout (add them to a subpackage): {stray}"


def test_subpackages_say_what_they_hold():
    for path in ROOT.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and len(doc.split()) >= 10, f"{path.relative_to(ROOT)} needs a docstring saying what it holds"


def test_imports_go_down_only():
    upward = []
    for module, path in MODULES.items():
        if _rank(module) == len(LAYERS):
            continue  # the facade may import anything
        for target, line in _imports(module, path):
            if target in NATIVE or _group(target) == _group(module):
                continue
            if _rank(target) >= _rank(module):
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not upward, "imports that run upward or sideways:\n" + "\n".join(upward)


def test_no_import_circle():
    # Tarjan's strongly connected components over module-to-module imports.
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, ()):
            if w not in GRAPH:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


def test_the_circle_check_finds_a_circle():
    # The checks above are only as good as the import walk: it must see
    # imports inside functions, relative at any depth.
    assert "coreseg.frames.stream" in GRAPH["coreseg.running.segmenter"]  # inside Segmenter.stream
    assert "coreseg.running.backends.onnx" in GRAPH["coreseg.running.loader"]  # inside load
    assert "coreseg.kernels._arrays" in GRAPH["coreseg.kernels.reference"]  # "from . import _arrays"


@pytest.mark.parametrize("old, new", sorted(MOVED.items()))
def test_old_module_paths_reach_the_moved_module(old, new):
    assert importlib.import_module(old) is importlib.import_module(new)


def test_split_modules_keep_their_old_names():
    from coreseg import demo, dist
    from coreseg.evaluation import scenes
    from coreseg.modelfiles import bundled
    from coreseg.scaleout import ray_cluster, ray_evaluate, ray_segment

    assert demo.scene is scenes.scene and demo.model_path is bundled.model_path and demo.CLASSES is bundled.CLASSES
    assert (dist.connect, dist.evaluate, dist.segment) == (ray_cluster.connect, ray_evaluate.evaluate,
                                                           ray_segment.segment)
    for name in coreseg.__all__:
        assert getattr(coreseg, name) is not None, name


def test_modules_stay_small_enough_to_read():
    long = {str(p.relative_to(ROOT)): n for p in MODULES.values() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these by concern (over {MAX_LINES} lines): {long}"
