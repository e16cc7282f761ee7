"""Verification (LFW 10-fold protocol) and identification (rank-1, MAP@R) metrics and reports."""

from faceprint.evaluation.identification import IdentificationResult, evaluate_identification
from faceprint.evaluation.pairs import PairList, generate_pairs, read_lfw_pairs
from faceprint.evaluation.report import EvalReport, evaluate_folder, evaluate_pair_list, save_roc
from faceprint.evaluation.verification import VerificationResult, embedding_distance, evaluate_verification

__all__ = [
    "EvalReport", "IdentificationResult", "PairList", "VerificationResult", "embedding_distance", "evaluate_folder",
    "evaluate_identification", "evaluate_pair_list", "evaluate_verification", "generate_pairs", "read_lfw_pairs",
    "save_roc",
]
