"""The engine side of each journey trigger kind, one module each (the syntax side is
``nudge.core.dsl.triggers``)."""
