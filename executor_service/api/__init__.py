"""The HTTP API: an app factory, one router per resource, and the one error shape."""
