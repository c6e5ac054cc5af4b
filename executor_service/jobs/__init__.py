"""Execution and session records, their states, and the Redis store every process shares."""
