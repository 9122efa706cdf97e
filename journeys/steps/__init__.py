"""The engine side of each journey step kind, one module each (the syntax side is
``nudge.core.dsl.steps``)."""
