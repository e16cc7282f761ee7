"""The model layer stands alone: serving and the model layer never import the trainer or TensorBoard."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "faceprint"


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("statement", ["import faceprint.serve", "import faceprint.models",
                                       "from faceprint.search import open_index", "import faceprint"])
def test_serving_and_the_model_layer_do_not_load_training(statement: str) -> None:
    loaded = _loaded_after(statement)
    assert statement.split()[1].split(".")[0] in {m.split(".")[0] for m in loaded}  # the import itself happened
    assert "tensorboard" not in loaded
    assert not {m for m in loaded if m.startswith(("faceprint.training", "torch.utils.tensorboard", "faceprint.cli"))}


def test_lazy_top_level_names_still_resolve() -> None:
    loaded = _loaded_after("from faceprint import Embedder, FaceEmbedder, embed")
    assert "faceprint.models.embedder" in loaded and "faceprint.training" not in loaded
    assert "faceprint.training.trainer" in _loaded_after("from faceprint import train")


def test_models_package_imports_nothing_above_it() -> None:
    """Static check of every module in faceprint/models: no import of training, search, serve, cluster or cli."""
    higher = ("faceprint.training", "faceprint.search", "faceprint.serve", "faceprint.cluster", "faceprint.cli",
              "faceprint.classify", "faceprint.evaluation", "faceprint.sweep", "faceprint.demo")
    offenders = []
    for path in sorted((SRC / "models").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            offenders += [f"{path.name}: {n}" for n in names if n.startswith(higher)]
    assert offenders == []
    assert len(list((SRC / "models").rglob("*.py"))) >= 10  # the walk saw the package


def test_old_homes_are_gone() -> None:
    """One home per concept: the former embedding/inference/weights/pretrained modules no longer exist."""
    for old in ("embedding.py", "weights.py", "inference", "pretrained", "search/faces.py"):
        assert not (SRC / old).exists(), old
