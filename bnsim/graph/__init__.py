"""Forward graphs of CNNs: layer kinds, shape-inferred networks, the model zoo, workload files."""

from bnsim.graph.layer import CATEGORIES, LayerKind, TensorShape
from bnsim.graph.load import load_workload, network_to_dict, network_to_yaml
from bnsim.graph.network import Network, build_network, rebuild
from bnsim.graph.summary import WorkloadSummary, summarize

__all__ = [
    "CATEGORIES",
    "LayerKind",
    "Network",
    "TensorShape",
    "WorkloadSummary",
    "build_network",
    "load_workload",
    "network_to_dict",
    "network_to_yaml",
    "rebuild",
    "summarize",
]
