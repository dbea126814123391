"""Contract tests: scenarios recorded from the monolith, replayed against any backend."""
