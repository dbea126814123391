"""The webhook sink under senders that die mid-delivery: quiet, and still serving."""

from __future__ import annotations

import socket
import struct

import requests

from strangler.stack.sink import WebhookSink
from tests.integration.polling import wait_for


def reset_mid_request(host: str, port: int) -> None:
    """Send half a request, then abort the connection (RST), as a SIGKILLed sender does."""
    sock = socket.create_connection((host, port))
    sock.sendall(b'POST /messages HTTP/1.1\r\nContent-Length: 100\r\n\r\n{"to":')
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_a_sender_killed_mid_delivery_leaves_no_traceback(capfd) -> None:
    with WebhookSink() as sink:
        host, port = sink.base_url.removeprefix("http://").split(":")
        for _ in range(5):
            reset_mid_request(host, int(port))
        body = {"to": "+15550001111", "channel": "sms", "code": "123456"}
        wait_for(lambda: requests.post(sink.url, json=body, timeout=5).ok, what="the sink serves")
        assert sink.latest_code("+15550001111") == "123456"
    assert "Traceback" not in capfd.readouterr().err
