"""Clustering photo collections by face: methods, metrics, and the HTML/CSV report."""

from faceprint.cluster.methods import METHODS, agglomerative, chinese_whispers, cluster, dbscan, squared_distances
from faceprint.cluster.metrics import cluster_metrics, nmi, pairwise_prf
from faceprint.cluster.report import ClusterReport, cluster_photos

__all__ = ["METHODS", "ClusterReport", "agglomerative", "chinese_whispers", "cluster", "cluster_metrics",
           "cluster_photos", "dbscan", "nmi", "pairwise_prf", "squared_distances"]
