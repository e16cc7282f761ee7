"""Pretrained FaceNet weights: read frozen TensorFlow graphs, convert them, keep them in the local cache."""

from faceprint.pretrained.convert import convert_facenet_graph, graph_input_size
from faceprint.pretrained.store import (
    PretrainedInfo,
    import_facenet_pytorch,
    import_tf_graph,
    list_pretrained,
    load_pretrained,
    save_pretrained,
)
from faceprint.pretrained.tf_graph import GraphDefError, TfNode, parse_graph_def, read_graph_def

__all__ = ["GraphDefError", "PretrainedInfo", "TfNode", "convert_facenet_graph", "graph_input_size",
           "import_facenet_pytorch", "import_tf_graph", "list_pretrained", "load_pretrained", "parse_graph_def",
           "read_graph_def", "save_pretrained"]
