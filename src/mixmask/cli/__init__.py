"""The ``mixmask`` command."""
