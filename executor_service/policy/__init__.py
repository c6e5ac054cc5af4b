"""Policies: what a tenant's code may use, as closed YAML documents validated at start-up."""
