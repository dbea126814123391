"""Load tests (`strangler.loadtests`): locust personas, the migration under load and the backend
comparison benchmark. Part of the toolkit: imports the routing model, `strangler.control` and
`strangler.stack`."""
