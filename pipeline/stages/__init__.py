"""The stages every run goes through: train, evaluate, aggregate, figures and report.

May import: every concern of pipeline but pipeline.analyses; algorithms, envs.
"""
