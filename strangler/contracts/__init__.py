"""The contract engine: scenarios, the two-run recorder with its noise model, recordings,
matchers and the replay that reports every difference of a step. Imports the routing model,
the data plane's settings, `strangler.control` and `strangler.stack`."""
