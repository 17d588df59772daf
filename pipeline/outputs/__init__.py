"""Where every output lives and how it is written whole, read back and traced.

May import: nothing else in pipeline.
"""
