"""The stacks a recording or a replay of the demo runs against, on free ports, with the sink."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path

from strangler.contracts.model import Target
from strangler.contracts.runner import Endpoints
from strangler.stack.running import running_stack

# Short enough that the expiry scenario waits seconds, long enough for a slow CI machine to
# send and check well inside it. The recordings say `expires_in: 3`: keep them in step.
CODE_TTL = 3


@contextlib.contextmanager
def running(
    target: Target,
    var_dir: Path,
    split: int = 0,
    env: Mapping[str, str] | None = None,
    data_plane: str = "embedded",
) -> Iterator[Endpoints]:
    """Start the stack for `target`, yield where to reach it, stop every child after."""
    service = target is not Target.MONOLITH
    proxy = target is Target.PROXY
    child_env = {"VERIFICATION_CODE_TTL": str(CODE_TTL), **(env or {})}
    with running_stack(
        var_dir,
        service=service,
        proxy=proxy,
        split=split if proxy else None,
        env=child_env,
        data_plane=data_plane,
    ) as stack:
        sink = stack.sink.base_url
        if target is Target.MONOLITH:
            yield Endpoints(stack.monolith_url, stack.monolith_url, sink)
        elif target is Target.SERVICE:
            yield Endpoints(stack.service_url, stack.monolith_url, sink)
        else:
            yield Endpoints(stack.proxy_url, stack.proxy_url, sink)
