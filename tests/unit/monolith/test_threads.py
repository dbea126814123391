"""Threads and posts over HTTP: create, list newest first, replies; every bad input."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient


@pytest.fixture
def author(client: FlaskClient) -> int:
    return client.post("/api/users", json={"name": "Ada"}).json["id"]


def test_threads_list_newest_first_with_pages(client: FlaskClient, author: int) -> None:
    ids = [
        client.post("/api/threads", json={"title": f"t{i}", "author_id": author}).json["id"]
        for i in range(3)
    ]
    first = client.get("/api/threads?limit=2").json
    assert [t["id"] for t in first["threads"]] == ids[::-1][:2]
    rest = client.get(f"/api/threads?limit=2&offset={first['next_offset']}").json
    assert [t["id"] for t in rest["threads"]] == ids[:1]
    assert rest["next_offset"] is None


def test_show_thread(client: FlaskClient, author: int) -> None:
    created = client.post("/api/threads", json={"title": " Hello ", "author_id": author})
    assert created.status_code == 201
    assert created.json["title"] == "Hello"
    assert client.get(f"/api/threads/{created.json['id']}").json == created.json


THREAD_CASES = [
    ("not-json", b"nope", 400, "invalid_json"),
    ("no-title", {"author_id": 1}, 400, "missing_field"),
    ("no-author", {"title": "t"}, 400, "missing_field"),
    ("title-list", {"title": ["t"], "author_id": 1}, 400, "invalid_title"),
    ("title-too-long", {"title": "t" * 201, "author_id": 1}, 400, "invalid_title"),
    ("author-string", {"title": "t", "author_id": "1"}, 400, "invalid_author_id"),
    ("author-bool", {"title": "t", "author_id": True}, 400, "invalid_author_id"),
    ("author-zero", {"title": "t", "author_id": 0}, 400, "invalid_author_id"),
    ("author-float", {"title": "t", "author_id": 1.5}, 400, "invalid_author_id"),
    ("author-huge", {"title": "t", "author_id": 2**64}, 400, "invalid_author_id"),
    ("author-unknown", {"title": "t", "author_id": 999}, 422, "unknown_author"),
]


@pytest.mark.parametrize(
    ("body", "status", "error"), [c[1:] for c in THREAD_CASES], ids=[c[0] for c in THREAD_CASES]
)
def test_bad_thread_input(client: FlaskClient, author: int, body, status: int, error: str) -> None:
    if isinstance(body, bytes):
        response = client.post("/api/threads", data=body)
    else:
        response = client.post("/api/threads", json=body)
    assert (response.status_code, response.json["error"]) == (status, error)
    assert client.get("/api/threads").json["threads"] == []


@pytest.fixture
def thread(client: FlaskClient, author: int) -> int:
    return client.post("/api/threads", json={"title": "t", "author_id": author}).json["id"]


def test_posts_read_oldest_first(client: FlaskClient, author: int, thread: int) -> None:
    for text in ("first", "second", "third"):
        response = client.post(
            f"/api/threads/{thread}/posts", json={"author_id": author, "body": text}
        )
        assert response.status_code == 201
        assert response.json["thread_id"] == thread
    page = client.get(f"/api/threads/{thread}/posts?limit=2").json
    assert [p["body"] for p in page["posts"]] == ["first", "second"]
    assert page["next_offset"] == 2


def test_posting_to_a_missing_thread_is_404(client: FlaskClient, author: int) -> None:
    response = client.post("/api/threads/999/posts", json={"author_id": author, "body": "x"})
    assert (response.status_code, response.json["error"]) == (404, "not_found")


POST_CASES = [
    ("not-object", b'"x"', 400, "invalid_json"),
    ("no-body", {"author_id": 1}, 400, "missing_field"),
    ("body-blank", {"author_id": 1, "body": ""}, 400, "invalid_body"),
    ("body-too-long", {"author_id": 1, "body": "x" * 10_001}, 400, "invalid_body"),
    ("author-negative", {"author_id": -1, "body": "x"}, 400, "invalid_author_id"),
    ("author-unknown", {"author_id": 42, "body": "x"}, 422, "unknown_author"),
]


@pytest.mark.parametrize(
    ("body", "status", "error"), [c[1:] for c in POST_CASES], ids=[c[0] for c in POST_CASES]
)
def test_bad_post_input(client: FlaskClient, thread: int, body, status: int, error: str) -> None:
    url = f"/api/threads/{thread}/posts"
    response = (
        client.post(url, data=body) if isinstance(body, bytes) else client.post(url, json=body)
    )
    assert (response.status_code, response.json["error"]) == (status, error)
    assert client.get(url).json["posts"] == []
