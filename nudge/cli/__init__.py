"""The `nudge` command and the read-only views it prints."""
