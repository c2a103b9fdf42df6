"""Delivery of notifications to channels outside the app: Web Push now, e-mail next.

A notification is stored for the open page (Socket.IO replays it); every other
channel gets a `Delivery` row written in the same transaction, which a worker
sends after commit, retries with back-off and marks once sent.  The member's
action never waits for, or fails with, a push service.
"""
