"""The journey engine: admits, moves and exits people, set-based, with no Dagster imports."""
