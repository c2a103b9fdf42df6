"""Targets and the sunset review: progress against the agreement's targets per quarter,
the review opened 30 days before the sunset, members' answers, the postmortem (#20)."""
