"""Learners in torch. No file I/O, no DVC, no Sacred, no params.yaml (ARCHITECTURE.md).

``FAMILIES`` names every learner (the ``family`` of an entry under ``algorithms`` in
params.yaml) and the class that implements it; ``learner(family)`` imports only that one.
Each class carries its protocol entry (``algorithms/learner.py``): settings, loop, modes.
"""

from __future__ import annotations

import importlib

from algorithms.learner import Learner

FAMILIES = {
    "vm3ac": "algorithms.learners.vm3ac:VM3AC",  # VM3-AC, MA-AC, MA-SAC, VM3-AC without latent
    "maven": "algorithms.learners.maven:MAVEN",  # MAVEN on MA-AC (VM3-AC §6)
    "si_moa": "algorithms.learners.si_moa:SIMOA",  # SI-MOA on MA-AC (VM3-AC §6)
    "maddpg": "algorithms.learners.maddpg:MADDPG",
    "maac": "algorithms.learners.maac:MAAC",
    "qmix": "algorithms.learners.qmix:QMIX",
    "iac": "algorithms.learners.iac:IAC",  # IAC, SQ, SIQ, SIAQ, Attn-QMIX, DDPG-MIX (IAC §4, §5.2)
    # discrete actions with masks (sparse SMAC, VM3-AC §6 Fig. 4)
    "fop": "algorithms.learners.fop:FOP",
    "vm3ac_fop": "algorithms.learners.vm3ac_fop:VM3ACFOP",  # VM3-AC on FOP (VM3-AC §6)
    "dop": "algorithms.learners.dop:DOP",  # stochastic DOP
    "maven_qmix": "algorithms.learners.maven_qmix:MAVENQMIX",  # MAVEN on QMIX (VM3-AC Fig. 4)
    "lica": "algorithms.learners.lica:LICA",
    "vdac": "algorithms.learners.vdac:VDAC",  # VDAC-mix
}


def learner(family: str) -> type[Learner]:
    module, name = FAMILIES[family].split(":")
    return getattr(importlib.import_module(module), name)


def module_of(family: str) -> str:
    return FAMILIES[family].split(":")[0]


__all__ = ["FAMILIES", "learner", "module_of"]
