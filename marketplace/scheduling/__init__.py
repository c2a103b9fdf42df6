"""APScheduler setup: periodic sweeps that call the same services users do."""
