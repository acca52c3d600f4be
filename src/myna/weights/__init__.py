"""Released weights: pull upstream GPT-SoVITS's models (Hugging Face, hf-mirror, ModelScope), verify,
list, locate and remove them. Nothing else in myna downloads; nothing here runs unless asked.

    from myna.weights import default_store
    pulled = default_store().locate("v2ProPlus")   # PulledModel(root, version, g2pw)
"""

from myna.weights.catalog import VERSIONS
from myna.weights.store import ModelStore, PulledModel, default_store

__all__ = ["VERSIONS", "ModelStore", "PulledModel", "default_store"]
