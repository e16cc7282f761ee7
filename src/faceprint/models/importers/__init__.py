"""Importers into the weights cache: TensorFlow graphs, facenet-pytorch state dicts, ONNX models, MTCNN files."""

from faceprint.models.importers.dlib_dnn import import_dlib, read_dlib_resnet
from faceprint.models.importers.facenet_tf import convert_facenet_graph, graph_input_size, import_tf_graph
from faceprint.models.importers.mtcnn_files import import_weights, weights_status
from faceprint.models.importers.onnx_model import import_onnx
from faceprint.models.importers.tf_graph import GraphDefError, TfNode, parse_graph_def, read_graph_def
from faceprint.models.importers.torch_state import import_facenet_pytorch

__all__ = ["GraphDefError", "TfNode", "convert_facenet_graph", "graph_input_size", "import_dlib", "import_facenet_pytorch", "import_onnx",
           "import_tf_graph", "import_weights", "parse_graph_def", "read_dlib_resnet", "read_graph_def", "weights_status"]
