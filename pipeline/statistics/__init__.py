"""Statistics over seeds and learning curves: intervals, final scores, thresholds.

May import: nothing else in pipeline.
"""
