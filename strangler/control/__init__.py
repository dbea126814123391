"""Changing and watching the routing of a running stack: shift and rollback with their audit
log, and the status of the running data plane. Imports the routing model and the data plane."""
