"""Clusters, member businesses, users, invites and the agreement they signed."""
