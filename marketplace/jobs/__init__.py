"""Overflow jobs: posting, eligibility, claims, bid windows, joint bids, awards, completion."""
