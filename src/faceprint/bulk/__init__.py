"""Bulk jobs (align, embed) over shards, on the local engine (threads, worker processes) or on Ray."""

from faceprint.bulk.jobs import AlignJob, EmbedJob
from faceprint.bulk.runner import BulkReport, run_job
from faceprint.bulk.shards import Shard, list_inputs, plan_shards

__all__ = ["AlignJob", "BulkReport", "EmbedJob", "Shard", "list_inputs", "plan_shards", "run_job"]
