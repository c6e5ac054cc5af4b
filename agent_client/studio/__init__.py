"""The studio: design, run and inspect agent teams in a browser (``agent-client studio``).

It is a client of the sandbox service like any other: every line of code a team writes runs
there. Nothing here imports the service.
"""
