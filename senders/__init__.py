"""Channel senders: rendering, policies, providers and the delivery ledger (no Dagster imports)."""
