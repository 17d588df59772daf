"""Each paper's own tables and figures, drawn from kept policies and curves: one subpackage per
paper, and the snapshots both read.

May import: pipeline.runtime, design, outputs, statistics; algorithms, envs. Never
pipeline.stages or pipeline.report.
"""
