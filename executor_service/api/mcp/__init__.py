"""The sandbox as an MCP server: tools mapped onto the service's own admission and session paths.

Served by the API process at `/mcp` (streamable HTTP, the REST API's Bearer keys) and by
`executor-service mcp` over stdio (a key from the environment); both build the same tools.
"""
