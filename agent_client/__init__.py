"""An async, AutoGen-style agent library whose generated code runs in the sandbox service."""
