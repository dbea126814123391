"""The routing model every data plane and the CLI share: the table's records, parsing and
validation, placement of a key, sticky keys and dispatch. Pure: it imports nothing of ours,
no asyncio and no network; the one file it reads is the routing table itself."""
