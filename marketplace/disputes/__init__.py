"""Disputes between members over a job's or a booking's money (issue #20 part 2)."""
