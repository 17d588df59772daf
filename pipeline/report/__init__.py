"""The report and what is published: claims, the report page and its browser check, the marl-eval
export and the bundle.

May import: pipeline.design, pipeline.outputs, pipeline.statistics. Never training: not
pipeline.runtime, stages or analyses.
"""
