"""The development console notifier: the code on one line, the destination masked."""

from __future__ import annotations

import io

import pytest

from strangler.extracted.verification_service.notifier import ConsoleNotifier, Message
from strangler.monolith import notifiers as monolith_notifiers


@pytest.mark.parametrize(
    ("to", "channel", "masked"),
    [("+15551234567", "sms", "+1555***4567"), ("ann@b.example", "email", "a***@b.example")],
)
def test_console_prints_the_code_and_a_masked_destination(to, channel, masked):
    out = io.StringIO()
    ConsoleNotifier(out).deliver(Message("VE" + "0" * 32, to, channel, "123456"))
    assert out.getvalue() == (
        f"[console notifier] {channel} to {masked} ({'VE' + '0' * 32}): your code is 123456\n"
    )
    assert to not in out.getvalue()


def test_console_line_is_the_monoliths():
    # Whoever reads codes off a development console finds them the same way on both backends.
    fields = ("VE" + "1" * 32, "+15551234567", "sms", "654321")
    service_out, monolith_out = io.StringIO(), io.StringIO()
    ConsoleNotifier(service_out).deliver(Message(*fields))
    monolith_notifiers.ConsoleNotifier(monolith_out).deliver(monolith_notifiers.Message(*fields))
    assert service_out.getvalue() == monolith_out.getvalue()
