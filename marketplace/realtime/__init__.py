"""Socket.IO: authenticated connections, per-user/member/coordinator rooms."""
