"""The worker: runs executions and session operations in sandboxes, and cleans up after others."""
