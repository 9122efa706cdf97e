"""The HTTP side of nudge: what applications, mail clients and people call."""
