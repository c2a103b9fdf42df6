"""The ledger: every money movement between members, as immutable entries."""
