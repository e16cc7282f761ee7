"""One runner for bulk jobs: plan shards, skip finished ones, run the rest on an engine, merge the records.

Engines:
- ``local`` (default): this process, pipelined (decode and write threads around the batched model work); with
  ``workers > 1``, that many worker processes, each with its own model and ``cores / workers`` torch threads.
- ``ray``: Ray Data over the same shards on a Ray cluster (faceprint.bulk.ray_engine).
Every engine writes the same per-shard outputs and records, so a job begun on one can be finished on another.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceprint.bulk.shards import Job, Shard, done_shards, list_inputs, read_records, run_shard, stable_shards, state_dir

__all__ = ["BulkError", "BulkReport", "Job", "run_job", "run_shard"]


class BulkError(RuntimeError):
    """A bulk job ended with shards unfinished (finished ones are kept: rerun to resume)."""

Progress = Callable[[int, int], None]  # (files done, files in all)


@dataclass
class BulkReport:
    """What a bulk run did: shards run now and before, files written, problems (path, issue, detail)."""

    shards: int = 0
    shards_run: int = 0
    shards_skipped: int = 0
    written: int = 0  # outputs written now
    problems: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    records: list[dict[str, Any]] = field(default_factory=list)  # every shard's record, this run's and earlier ones
    ran: set[str] = field(default_factory=set)  # the shards run now
    shard_list: list[Shard] = field(default_factory=list)  # every shard of the manifest, in its order
    job: Any = None  # the job as it ran (its paths resolved): ``state_dir(report.job)`` holds its records


def run_job(job: Job, engine: str = "local", workers: int = 1, shard_size: int = 256, progress: Progress | None = None,
            ray_address: str | None = None, threads: int = 2, model: Any = None,
            inputs: list[str] | None = None) -> BulkReport:
    """Run ``job`` over every image under ``job.src``; finished shards (a record in the state folder) are skipped.

    ``model``: an already built model for the one-process local engine (else ``job.setup()`` builds it).
    ``inputs``: the files to run (paths relative to ``job.src``, in this order) instead of every image under it."""
    import dataclasses

    t0 = time.perf_counter()
    names = {f.name for f in dataclasses.fields(job)}  # type: ignore[arg-type]
    # absolute paths: the same folders on every node, and one recipe hash however they were spelled
    job = dataclasses.replace(job, **{k: str(Path(getattr(job, k)).resolve()) for k in ("src", "dst", "prefix")  # type: ignore[type-var]
                                      if k in names})
    files, clashes = _one_per_output(job, list(inputs) if inputs is not None else list_inputs(Path(job.src)))
    shards = stable_shards(state_dir(job), files, shard_size)
    done = done_shards(state_dir(job))
    todo = [s for s in shards if s.name not in done]
    total = sum(len(s.files) for s in shards)
    finished = total - sum(len(s.files) for s in todo)
    if progress is not None:
        progress(finished, total)
    if engine == "local" and workers <= 1:
        _run_here(job, todo, finished, total, progress, threads, model)
    elif engine == "local":
        _run_processes(job, todo, finished, total, progress, workers)
    elif engine == "ray":
        from faceprint.bulk.ray_engine import run_on_ray

        run_on_ray(job, todo, ray_address, workers, progress, finished, total)
    else:
        raise ValueError(f"unknown engine {engine!r} (local or ray)")
    records = read_records(state_dir(job), shards)
    missing = len(shards) - len(records)
    if missing:
        raise BulkError(f"{missing} shards did not finish; rerun to resume (finished shards are kept)")
    ran = {s.name for s in todo}
    report = BulkReport(shards=len(shards), shards_run=len(todo), shards_skipped=len(shards) - len(todo),
                        written=sum(r["written"] for r in records if r["shard"] in ran), seconds=time.perf_counter() - t0,
                        records=records, ran=ran, shard_list=shards, job=job)
    report.problems = clashes + [p for r in records for p in r["problems"]]
    finish = getattr(job, "finish", None)
    if finish is not None:  # e.g. the embed job merges its shards' arrays in manifest order
        finish(shards)
    current = {s.name for s in shards}
    for old in state_dir(job).glob("shard-*"):  # records (and arrays) of shards the manifest no longer has
        if old.name.split(".")[0] not in current:
            old.unlink(missing_ok=True)
    return report


def _one_per_output(job: Job, files: list[str]) -> tuple[list[str], list[dict[str, str]]]:
    """Inputs whose outputs would be one file (``a.jpg`` and ``a.png`` both give ``a.png``): the first is kept, the
    others are listed as problems and never run (two shards writing one file could clobber each other)."""
    output = getattr(job, "output", None)
    if output is None:
        return files, []
    seen: dict[Path, str] = {}
    keep, clashes = [], []
    for rel in files:
        out = output(rel)
        if out in seen:
            clashes.append({"path": str(Path(job.src) / rel), "issue": "same_output",
                            "detail": f"{out} is already the output of {seen[out]}"})
        else:
            seen[out] = rel
            keep.append(rel)
    return keep, clashes


def _run_here(job: Job, todo: list[Shard], finished: int, total: int, progress: Progress | None, threads: int,
              model: Any) -> None:
    if not todo:
        return
    model = model if model is not None else job.setup()
    with ThreadPoolExecutor(threads) as pool:
        for shard in todo:
            run_shard(job, model, shard, pool)
            finished += len(shard.files)
            if progress is not None:
                progress(finished, total)


def _run_processes(job: Job, todo: list[Shard], finished: int, total: int, progress: Progress | None,
                   workers: int) -> None:
    import multiprocessing

    cores = os.cpu_count() or 1
    torch_threads = max(1, cores // workers)
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited torch thread pools or locks
    from concurrent.futures.process import BrokenProcessPool

    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init, initargs=(job, torch_threads)) as ex:
        futures = {ex.submit(_worker_run, shard): shard for shard in todo}
        for fut in as_completed(futures):
            try:
                fut.result()
            except BrokenProcessPool:  # one line for the CLI, as for unfinished shards, not the pool's traceback
                raise BulkError("a worker process died (killed, out of memory, or its model failed to load); finished "
                                "shards are kept: rerun to resume") from None
            finished += len(futures[fut].files)
            if progress is not None:
                progress(finished, total)


_WORKER: dict[str, Any] = {}  # per worker process: the job and its model, built once by the initializer


def _worker_init(job: Job, torch_threads: int) -> None:
    import torch

    torch.set_num_threads(torch_threads)
    _WORKER.update(job=job, model=job.setup(), pool=ThreadPoolExecutor(max(1, torch_threads)))


def _worker_run(shard: Shard) -> str:
    run_shard(_WORKER["job"], _WORKER["model"], shard, _WORKER["pool"])
    return shard.name
