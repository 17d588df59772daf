"""One module per learner family, each read like its paper's algorithm box, and the two skeletons
the discrete learners share.

May import: algorithms.models, algorithms.components, algorithms.learner (the protocol), one
another.
"""
