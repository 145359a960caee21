"""Active health checks: each integration's ``api.health`` probed in the background."""
