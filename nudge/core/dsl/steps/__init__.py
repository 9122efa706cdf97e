"""The journey step kinds, one module each (the syntax side; the engine side is ``journeys.steps``)."""
