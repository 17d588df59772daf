"""Stage entry points: read params.yaml, run the library, write results (Sacred lives here)."""
