"""Load tests: locust personas, migration under load, and the backend comparison benchmark."""
