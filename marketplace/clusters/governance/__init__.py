"""Decisions by the charter's rule: proposals to change the agreement and votes (issue #20)."""
