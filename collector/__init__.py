"""The HTTP collector: Segment- and Customer.io-compatible ingest into the landing area.

It never opens the warehouse: accepted messages go into the landing area's journal
(``nudge.landing.journal``) and become landing files the loader reads. See docs/collector.md.
"""
