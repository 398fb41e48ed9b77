"""What every layer shares and nothing of ours is imported by: the object store and the run's
layout in it, the run's identity settings, provenance and the error types.

Dependencies point one way: `common` <- `trainer` <- `jobs` (and `jobs` <- `common`).
"""
