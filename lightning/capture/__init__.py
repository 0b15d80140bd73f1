"""Episode capture for any agent (``ENABLE_EPISODE_CAPTURE=true``): batched, redacted, spooled on outage."""
