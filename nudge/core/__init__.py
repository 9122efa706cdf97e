"""The core: definitions, conditions, segments, the warehouse, landing and the workspace.

It imports nothing above it (journeys, senders, orchestration, the CLI); see docs/architecture.md.
"""
