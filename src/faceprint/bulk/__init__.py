"""Bulk jobs (align, embed, every face for index build and library add) over shards, on the local engine (threads,
worker processes) or on Ray."""

from faceprint.bulk.faces import FacesJob, Runner, drop_state, faces_of_photos, model_of, usable
from faceprint.bulk.jobs import AlignJob, EmbedJob
from faceprint.bulk.runner import BulkReport, run_job
from faceprint.bulk.shards import Shard, list_inputs, plan_shards

__all__ = ["AlignJob", "BulkReport", "EmbedJob", "FacesJob", "Runner", "Shard", "drop_state", "faces_of_photos", "list_inputs", "model_of",
           "plan_shards", "run_job", "usable"]
