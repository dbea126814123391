"""Services extracted from the monolith (`strangler.extracted`); imports nothing of the toolkit."""
