"""The HAProxy data plane: `routes.yaml` exported as an HAProxy config, and the agent that runs
HAProxy, applies changes live through its runtime API and reports its status like the embedded
proxy. Imports the routing model, the embedded data plane's settings and `strangler.control`."""
