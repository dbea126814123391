"""Users over HTTP: create, duplicates, list with pagination, show; every bad input."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient


def create(client: FlaskClient, **fields: Any):
    return client.post("/api/users", json=fields)


def test_create_and_show(client: FlaskClient) -> None:
    response = create(client, name=" Ada ", email="Ada@Example.ORG", phone="+15551234567")
    assert response.status_code == 201
    user = response.json
    assert user["name"] == "Ada"
    assert user["email"] == "ada@example.org"
    assert (user["phone_verified"], user["email_verified"]) == (False, False)
    assert client.get(f"/api/users/{user['id']}").json == user


def test_optional_contacts_may_be_absent_or_null(client: FlaskClient) -> None:
    assert create(client, name="a").status_code == 201
    assert create(client, name="b", email=None, phone=None).status_code == 201


@pytest.mark.parametrize(
    ("first", "second", "error"),
    [
        ({"email": "a@b.example"}, {"email": "A@B.example"}, "duplicate_email"),
        ({"phone": "+15551234567"}, {"phone": "+15551234567"}, "duplicate_phone"),
    ],
)
def test_duplicates_are_409(client: FlaskClient, first, second, error: str) -> None:
    assert create(client, name="a", **first).status_code == 201
    response = create(client, name="b", **second)
    assert (response.status_code, response.json["error"]) == (409, error)


USER_CASES = [
    ("not-json", b"{name", "invalid_json"),
    ("array", b"[]", "invalid_json"),
    ("no-name", {}, "missing_field"),
    ("null-name", {"name": None}, "missing_field"),
    ("name-number", {"name": 5}, "invalid_name"),
    ("name-blank", {"name": "   "}, "invalid_name"),
    ("name-too-long", {"name": "x" * 101}, "invalid_name"),
    ("email-bad", {"name": "a", "email": "nope"}, "invalid_email"),
    ("email-number", {"name": "a", "email": 7}, "invalid_email"),
    ("phone-bad", {"name": "a", "phone": "555-1234"}, "invalid_phone"),
    ("phone-number", {"name": "a", "phone": 15551234567}, "invalid_phone"),
]


@pytest.mark.parametrize(
    ("body", "error"), [c[1:] for c in USER_CASES], ids=[c[0] for c in USER_CASES]
)
def test_bad_user_input_is_400(client: FlaskClient, body, error: str) -> None:
    if isinstance(body, bytes):
        response = client.post("/api/users", data=body)
    else:
        response = client.post("/api/users", json=body)
    assert response.status_code == 400
    assert response.json["error"] == error
    assert client.get("/api/users").json["users"] == []


def test_list_pages_through_every_user_once(client: FlaskClient) -> None:
    ids = [create(client, name=f"u{i}").json["id"] for i in range(5)]
    seen, offset = [], 0
    while offset is not None:
        page = client.get(f"/api/users?limit=2&offset={offset}").json
        seen += [u["id"] for u in page["users"]]
        offset = page["next_offset"]
    assert seen == ids


@pytest.mark.parametrize(
    ("query", "error"), [("limit=0", "invalid_limit"), ("offset=x", "invalid_offset")]
)
def test_bad_pagination_is_400(client: FlaskClient, query: str, error: str) -> None:
    response = client.get(f"/api/users?{query}")
    assert (response.status_code, response.json["error"]) == (400, error)
