"""The stack's processes: specs of each child, their supervisor, `strangler up` and the webhook
sink that stands in for an SMS/e-mail gateway. Imports the routing model, the data plane and
`strangler.control`."""
