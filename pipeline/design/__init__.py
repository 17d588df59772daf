"""The experiment design: params.yaml checked and turned into runs, dvc.yaml and code digests.

May import: pipeline.outputs, algorithms, envs.
"""
