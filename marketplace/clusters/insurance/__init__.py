"""Verified insurance: certificates members upload, the coordinator verifies (issue #20)."""
