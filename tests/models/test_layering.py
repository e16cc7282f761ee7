"""The model layer stands alone: serving and the model layer never import the trainer or TensorBoard."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "faceprint"


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


TRAINING = ("faceprint.training", "torch.utils.tensorboard", "tensorboard", "faceprint.cli", "faceprint.sweep",
            "faceprint.demo")
ABOVE_MODELS = (*TRAINING, "faceprint.search", "faceprint.serve", "faceprint.cluster", "faceprint.classify",
                "faceprint.evaluation")


@pytest.mark.parametrize(("statement", "proof", "forbidden"), [
    ("import faceprint.serve", "faceprint.serve.app", TRAINING),
    ("from faceprint.search import open_index", "faceprint.search.index", TRAINING),
    ("import faceprint.models", "faceprint.models.pipeline", ABOVE_MODELS),
    ("import faceprint", "faceprint", ABOVE_MODELS),
])
def test_serving_and_the_model_layer_do_not_load_training(statement: str, proof: str, forbidden: tuple[str, ...]) -> None:
    loaded = _loaded_after(statement)
    assert proof in loaded  # the import itself happened
    assert sorted(m for m in loaded if m.startswith(forbidden)) == []


def test_lazy_top_level_names_still_resolve() -> None:
    loaded = _loaded_after("from faceprint import Embedder, FaceEmbedder, embed")
    assert "faceprint.models.embedder" in loaded and "faceprint.training" not in loaded
    assert "faceprint.training.trainer" in _loaded_after("from faceprint import train")


def test_models_package_imports_nothing_above_it() -> None:
    """Static check of every module in faceprint/models: no import of training, search, serve, cluster or cli."""
    higher = ("faceprint.training", "faceprint.search", "faceprint.serve", "faceprint.cluster", "faceprint.cli",
              "faceprint.classify", "faceprint.evaluation", "faceprint.sweep", "faceprint.demo")
    offenders, seen = [], 0
    for path in sorted((SRC / "models").rglob("*.py")):
        package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level else ""  # resolve relative imports
                module = ".".join(filter(None, [base, node.module or ""]))
                names = [module, *(f"{module}.{a.name}" for a in node.names)]  # `from faceprint import training`
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module" and node.args:
                names = [getattr(node.args[0], "value", "")]
            else:
                continue
            seen += len(names)
            offenders += [f"{path.name}: {n}" for n in names if str(n).startswith(higher)]
    assert offenders == [] and seen > 50
    assert len(list((SRC / "models").rglob("*.py"))) >= 10  # the walk saw the package


def test_old_homes_are_gone() -> None:
    """One home per concept: the former embedding/inference/weights/pretrained modules and references to them are gone."""
    for old in ("embedding.py", "weights.py", "inference", "pretrained", "search/faces.py"):
        assert not (SRC / old).exists(), old
    root = SRC.parents[1]
    old_names = re.compile(r"faceprint\.(embedding|inference|weights|pretrained|search\.faces)\b")
    files = [*root.glob("src/**/*.py"), *root.glob("tests/**/*.py"), *root.glob("benchmarks/**/*.py"), root / "README.md"]
    hits = [f"{f.relative_to(root)}:{n}" for f in files if f != Path(__file__)
            for n, line in enumerate(f.read_text().splitlines(), 1) if old_names.search(line)]
    assert hits == [] and len(files) > 100
