"""strangler: migrate a monolith to services one route at a time (the strangler-fig pattern).

The import package of the toolkit. Its parts, each a package that imports only those below it:
`strangler.routing` (the routing model, pure) <- `strangler.proxy` (the embedded data plane)
<- the toolkit: `strangler.control`, `strangler.stack`, `strangler.contracts`,
`strangler.loadtests` and the `strangler` command (`strangler.cli`). The demo backends,
`strangler.monolith` and `strangler.extracted`, import none of them. Importing this package
imports nothing else.
"""

__version__ = "0.2.0"
