"""The DVC pipeline's stages and what they run, one subpackage per concern.

outputs/ and statistics/ at the bottom; design/ (params.yaml to runs and dvc.yaml) above
outputs/; runtime/ (running a training or evaluation) above design/; analyses/ (each paper's
own tables and figures) and stages/ (train, evaluate, aggregate, figures, report) on top;
report/ (claims, page, bundle) reads design/, outputs/ and statistics/ only, never training.
Each subpackage's docstring says what it may import; tests/test_layout.py holds every arrow.
"""
