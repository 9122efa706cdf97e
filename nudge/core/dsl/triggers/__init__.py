"""The journey trigger kinds, one module each (the syntax side; the engine side is
``journeys.triggers``)."""
