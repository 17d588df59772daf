"""Learners in torch. No file I/O, no DVC, no Sacred, no params.yaml (ARCHITECTURE.md).

``FAMILIES`` maps a family name (the ``family`` of an entry under ``algorithms`` in
params.yaml) to its module class and its settings dataclass.
"""

from algorithms.vm3ac import VM3AC, VM3ACSettings

FAMILIES = {
    "vm3ac": (VM3AC, VM3ACSettings),
}

__all__ = ["FAMILIES"]
