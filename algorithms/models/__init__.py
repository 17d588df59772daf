"""Torch modules with a leading seed axis: networks, policies and their distributions, critics,
mixers, models of partners.

May import: algorithms.components, one another.
"""
