"""The SMAC maps of VM3-AC §6 (Fig. 4: 3m, 2s3z, 3s_vs_3z) with SMAC's episode limits.

3m and 2s3z are built into SMAX (JaxMARL). 3s_vs_3z is not: ``unit_types`` gives it as a SMAX
scenario, three stalkers against three zealots (SMAC's units for that map), which
``envs.smax_dynamics`` registers with SMAX. Unit speeds, health and weapons are SMAX's own.
Plain data, so that reading a map does not import JAX.
"""

from __future__ import annotations

from dataclasses import dataclass

STALKER, ZEALOT = 2, 3  # SMAX unit type ids: 0 marine, 1 marauder, 2 stalker, 3 zealot, ...


@dataclass(frozen=True)
class SMACMap:
    allies: int
    enemies: int
    episode_limit: int  # SMAC's time limit for the map, in agent steps
    unit_types: tuple[int, ...] | None = None  # allies then enemies; None: built into SMAX


MAPS: dict[str, SMACMap] = {
    "3m": SMACMap(3, 3, 60),  # SMAC: 3 marines each side, limit 60
    "2s3z": SMACMap(5, 5, 120),  # SMAC: 2 stalkers + 3 zealots each side, limit 120
    # SMAC: 3 stalkers against 3 zealots, limit 150
    "3s_vs_3z": SMACMap(3, 3, 150, (STALKER,) * 3 + (ZEALOT,) * 3),
}


def smac_map(map_name: str) -> SMACMap:
    """The map's sizes and limit; ValueError naming the map if the task does not know it."""
    if map_name not in MAPS:
        raise ValueError(f"sparse_smac: unknown map '{map_name}' (known: {', '.join(MAPS)})")
    return MAPS[map_name]
