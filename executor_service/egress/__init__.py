"""Egress: the allowlisting forward proxy a sandbox reaches through a Unix socket, and its rules."""
