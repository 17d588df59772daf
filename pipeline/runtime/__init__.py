"""Running a stage: building a run, the training and evaluation loops, resume points, memory and
device checks, progress, Sacred, and the Dask builder.

May import: pipeline.design, pipeline.outputs, algorithms, envs.
"""
