"""A stable shard manifest of a job's inputs, and the per-shard records that make a job resumable.

Inputs are the sorted relative paths of a source tree, cut into shards of ``shard_size``. A shard's name carries a
hash of its member list, so a rerun over the same inputs finds the same shards, and a shard whose members changed
is a new shard. A shard is done when its record (``<state>/<name>.json``, written atomically and durably after
its outputs are on disk) exists: any engine, any worker, any machine sharing the folder skips it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from faceprint.data.images import IMAGE_EXTENSIONS
from faceprint.faults import fault_point
from faceprint.io import atomic_write_json

__all__ = ["Job", "Shard", "done_shards", "list_inputs", "plan_shards", "read_records", "run_shard", "stable_shards", "state_dir", "write_record"]


@dataclass(frozen=True)
class Shard:
    """One unit of work: its position and its member files (paths relative to the job's source)."""

    index: int
    files: tuple[str, ...]

    @property
    def name(self) -> str:
        digest = hashlib.sha1("\n".join(self.files).encode()).hexdigest()[:10]
        return f"shard-{self.index:05d}-{digest}"


def list_inputs(src: Path) -> list[str]:
    """Image files under ``src`` (hidden files and folders skipped), as sorted POSIX paths relative to it."""
    out = []
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in files:
            if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS:
                out.append((Path(root) / f).relative_to(src).as_posix())
    return sorted(out)


def plan_shards(files: Sequence[str], shard_size: int = 256) -> list[Shard]:
    """Consecutive shards of ``shard_size`` files (the last may be shorter)."""
    if shard_size < 1:
        raise ValueError("shard_size must be at least 1")
    return [Shard(i // shard_size, tuple(files[i : i + shard_size])) for i in range(0, len(files), shard_size)]


def stable_shards(state: Path, files: Sequence[str], shard_size: int = 256) -> list[Shard]:
    """The shards of ``files``, keeping those of an earlier run of the same job (``<state>/manifest.json``): files
    seen before stay in their shard (a shard that lost a file is a new shard), new files form new shards at the
    end. Adding photos to a large tree therefore runs only the new shards, wherever the photos sort."""
    if shard_size < 1:
        raise ValueError("shard_size must be at least 1")
    path = state / "manifest.json"
    before = json.loads(path.read_text()) if path.is_file() else {"shard_size": shard_size, "shards": []}
    current, shards, placed = set(files), [], set()
    for i, members in enumerate(before["shards"]):
        kept = tuple(f for f in members if f in current)
        placed.update(kept)
        if kept:
            shards.append(Shard(i, kept))
    size = shard_size  # new files are cut at this run's size; shards of earlier runs keep their members
    new = [f for f in files if f not in placed]
    start = len(before["shards"])
    shards += [Shard(start + j // size, tuple(new[j : j + size])) for j in range(0, len(new), size)]
    state.mkdir(parents=True, exist_ok=True)
    members = [list(s.files) for s in shards]
    indices = [s.index for s in shards]
    layout: list[list[str]] = [[] for _ in range(max([len(before["shards"]), *(i + 1 for i in indices)]))]  # emptied
    # shards keep their places: an index is never given to other members
    for i, m in zip(indices, members):
        layout[i] = m
    atomic_write_json(path, {"shard_size": size, "shards": layout})
    return shards


def done_shards(state: Path) -> set[str]:
    """Names of the shards with a record in ``state``."""
    return {p.stem for p in state.glob("shard-*.json")} if state.is_dir() else set()


def write_record(state: Path, shard: Shard, record: dict[str, Any]) -> None:
    """Mark ``shard`` done. Call it only once the shard's outputs are durable (see ``sync_outputs``)."""
    atomic_write_json(state / f"{shard.name}.json", {"shard": shard.name, "files": len(shard.files), **record})


def read_records(state: Path, shards: Sequence[Shard]) -> list[dict[str, Any]]:
    """The records of ``shards`` (those of other manifests left in the folder are ignored)."""
    return [json.loads((state / f"{s.name}.json").read_text()) for s in shards if (state / f"{s.name}.json").is_file()]


class Job(Protocol):
    src: str
    dst: str

    def setup(self) -> Any: ...
    def run(self, model: Any, shard: Shard, pool: ThreadPoolExecutor) -> dict[str, Any]: ...


def state_dir(job: Job) -> Path:
    """Where ``job``'s shard records live: one folder per job recipe (other options make other records)."""
    import dataclasses

    recipe = json.dumps(dataclasses.asdict(job), sort_keys=True, default=str)  # type: ignore[call-overload]
    return Path(job.dst) / ".faceprint-shards" / f"{type(job).__name__.lower()}-{hashlib.sha1(recipe.encode()).hexdigest()[:12]}"


def run_shard(job: Job, model: Any, shard: Shard, pool: ThreadPoolExecutor) -> dict[str, Any]:
    """Run one shard and mark it done once its outputs are durable (one sync for the shard, not one per file)."""
    record = {**job.run(model, shard, pool), "pid": os.getpid()}
    fault_point("bulk.shard")  # outputs written, not yet durable nor recorded
    if hasattr(os, "sync"):
        os.sync()
    write_record(state_dir(job), shard, record)
    return record
