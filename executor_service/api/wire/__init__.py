"""The HTTP contract (v1): every request body, response body and event payload, one module per
resource, each with the functions that map the service's records onto it.

Records (`jobs/`) and runner types (`sandbox/`) never know how they look on the wire; only these
modules do, so the stored format and the runner can change without a client noticing, and the
other protocols (MCP, Piston, Judge0) map the same records their own way.
"""
