"""Running untrusted code in throw-away, hardened containers: pure specs, a runner protocol, and the
one backend that talks to Docker."""
