"""The studio's JSON API, one module per resource: specs, runs, connections."""
