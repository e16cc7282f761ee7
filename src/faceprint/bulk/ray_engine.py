"""The Ray engine: Ray Data over the runner's shards, ``map_batches`` on an actor pool that holds the model.

Each actor builds the job's model once (on a GPU where the cluster offers one and ``gpus_per_worker`` asks
for it) and runs whole shards with the same code as the local engine, writing the same outputs and records to
the shared output folder. A worker that dies mid-shard leaves no record for it: Ray retries the shard on
another actor, or a rerun of the job does (finished shards are skipped), and its outputs are rewritten in place
by atomic renames, so nothing is lost or doubled.

Needs ``pip install "faceprint[ray]"``. Without ``address`` a local Ray instance is started on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from faceprint.bulk.shards import Shard

__all__ = ["ShardActor", "loopback_only", "run_on_ray"]


class ShardActor:
    """A Ray Data callable class: one model per actor, a batch of shard rows in, their names and counts out."""

    def __init__(self, job: Any, torch_threads: int = 1) -> None:
        import torch

        torch.set_num_threads(torch_threads)
        self.job, self.model, self.pool = job, job.setup(), ThreadPoolExecutor(2)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from faceprint.bulk.shards import run_shard

        names, written = [], []
        for index, files in zip(batch["index"], batch["files"]):
            shard = Shard(int(index), tuple(str(f) for f in files))
            record = run_shard(self.job, self.model, shard, self.pool)
            names.append(shard.name)
            written.append(record["written"])
        return {"name": np.array(names), "written": np.array(written), "files": np.array([len(f) for f in batch["files"]])}


def loopback_only() -> None:
    """Make a Ray started from this process listen on 127.0.0.1 only: on Linux Ray otherwise swaps 127.0.0.1 for the
    machine's address and its servers listen on every interface (checked with ``ss -ltn``, Ray 2.60). The variable
    is Ray's own switch for single-machine mode; processes Ray starts inherit it."""
    import os

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # for the processes Ray starts
    try:  # and for this one, if Ray was imported before (the constant is read at import)
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False
    except ImportError:
        pass


def run_on_ray(job: Any, todo: list[Shard], address: str | None, workers: int, progress: Callable[[int, int], None] | None,
               finished: int, total: int, gpus_per_worker: float = 0.0) -> None:
    """Run ``todo`` on Ray (``address``: an existing cluster, e.g. ``ray://host:10001`` or ``auto``)."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ImportError('the Ray engine needs Ray Data: pip install "faceprint[ray]"') from exc
    if not todo:
        return
    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:  # a local instance, and slots for the read, the actors and Ray Data's own tasks (fewer can hang)
            loopback_only()
            ray.init(num_cpus=max(4, workers + 2), include_dashboard=False, _node_ip_address="127.0.0.1",
                     log_to_driver=False)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        items = [{"index": s.index, "files": list(s.files)} for s in todo]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        out = ds.map_batches(ShardActor, fn_constructor_args=(job,), batch_size=1, num_cpus=1, num_gpus=gpus_per_worker,
                             compute=ray.data.ActorPoolStrategy(size=max(1, workers)),
                             max_restarts=3, max_task_retries=3)  # a dead actor restarts; a shard that keeps killing
        # its actors fails the job after 3 retries instead of hanging it (rerun to resume the others)
        for row in out.iter_rows():
            finished += int(row["files"])
            if progress is not None:
                progress(finished, total)
    finally:
        if started:
            ray.shutdown()
