"""``nudge bench``: every pipeline stage timed against a floor, at laptop and warehouse scale.

See BENCHMARKS.md for what each stage and floor is. ``runner.run_bench`` is the entry point.
"""
