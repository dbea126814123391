"""The embedded data plane (`strangler.proxy`): a master and uvloop workers that serve
`routes.yaml` on the public URL, with upstream pools, affinity in Redis, hot reload and the
admin listener. Imports the routing model (`strangler.routing`) and nothing else of ours."""
