"""The REST API: Congress v1 and the HA extension."""
