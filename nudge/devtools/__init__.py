"""Developer tools on top of everything: the benchmark, sample data, scenario runner, demo, SMTP sink."""
