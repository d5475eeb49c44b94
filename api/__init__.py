"""The Data API: a read-only sidecar process serving the brain's state over REST.

It never imports the brain: everything it serves comes from the shared store (snapshots,
kept in memory by one follower per process) and the SQL history (a read-only engine).
``create_app`` in ``api.app`` builds the Starlette application; ``tradingbrain api`` runs it.
"""
