"""Shared machines: listings, bookings that never double-book, rotation of co-owned ones."""
