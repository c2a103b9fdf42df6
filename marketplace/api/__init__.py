"""The JSON API under /api/v1: the same service calls as the pages, for scripts and apps."""
