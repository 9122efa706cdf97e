"""One module per provider; ``senders.registry`` registers each once."""
