"""The message bus: oslo.messaging transport, heartbeats and peers, table sync."""
