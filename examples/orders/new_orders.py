"""The new orders service: the legacy shop's orders API, rewritten on Flask by another team.

It answers only `/api/orders/` (and `/health`); everything else stays with the legacy shop.
Both share the shop's SQLite file while the route migrates (the strangler fig's first
step moves the code; the data follows later). Run it under gunicorn:

    ORDERS_DATABASE=shop.sqlite3 gunicorn --bind 127.0.0.1:9002 'new_orders:create_app()'
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from flask import Flask, Response, g, jsonify, request

COLUMNS = "id, customer, item, quantity, status, created_at"
MAX_QUANTITY = 100


class OrderError(Exception):
    """A refused request: its HTTP status, machine code and message (the legacy shop's)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Order:
    id: int
    user: str
    item: str
    quantity: int
    status: str
    created_at: str


class OrderBook:
    """The orders of the shop's database, for one request."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.db = connection

    def of(self, user: str) -> list[Order]:
        query = f"SELECT {COLUMNS} FROM orders WHERE customer = ? ORDER BY id"  # noqa: S608
        return [Order(*row) for row in self.db.execute(query, (user,))]

    def get(self, user: str, order_id: int) -> Order:
        query = f"SELECT {COLUMNS} FROM orders WHERE id = ? AND customer = ?"  # noqa: S608
        row = self.db.execute(query, (order_id, user)).fetchone()
        if row is None:
            raise OrderError(404, "not_found", "no order of yours has that id")
        return Order(*row)

    def place(self, user: str, item: str, quantity: int) -> Order:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        cursor = self.db.execute(
            "INSERT INTO orders (customer, item, quantity, status, created_at)"
            " VALUES (?, ?, ?, 'placed', ?)",
            (user, item, quantity, now),
        )
        return Order(cursor.lastrowid, user, item, quantity, "placed", now)

    def cancel(self, user: str, order_id: int) -> Order:
        order = self.get(user, order_id)
        if order.status == "cancelled":
            raise OrderError(409, "already_cancelled", "the order is cancelled already")
        self.db.execute("UPDATE orders SET status = 'cancelled' WHERE id = ?", (order_id,))
        return Order(**{**asdict(order), "status": "cancelled"})


def parse_order(raw: bytes) -> tuple[str, int]:
    try:
        fields = json.loads(raw)
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        raise OrderError(400, "malformed_json", "the body must be a JSON object")
    item = fields.get("item")
    if not isinstance(item, str) or not item.strip():
        raise OrderError(400, "missing_item", "item: the name of a product is required")
    quantity = fields.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise OrderError(400, "bad_quantity", "quantity: a whole number from 1 to 100")
    if not 1 <= quantity <= MAX_QUANTITY:
        raise OrderError(400, "bad_quantity", "quantity: a whole number from 1 to 100")
    return item.strip(), quantity


def create_app(database: str | None = None) -> Flask:
    app = Flask(__name__)
    app.config["DATABASE"] = database or os.environ.get("ORDERS_DATABASE", "shop.sqlite3")

    def book() -> OrderBook:
        if "book" not in g:
            g.db = sqlite3.connect(app.config["DATABASE"], timeout=10)
            g.book = OrderBook(g.db)
        return g.book

    @app.teardown_request
    def finish(error: BaseException | None) -> None:
        db = g.pop("db", None)
        if db is not None:
            if error is None:
                db.commit()
            db.close()

    @app.before_request
    def identify() -> None:
        # Before routing errors too: the legacy shop asks who you are before anything else.
        if request.path.startswith("/api/orders/"):
            g.user = (request.headers.get("X-User") or "").strip()
            if not g.user:
                raise OrderError(401, "no_user", "the X-User header must name the customer")

    @app.errorhandler(OrderError)
    def refused(error: OrderError) -> tuple[Response, int]:
        return jsonify(error=error.code, message=error.message), error.status

    @app.errorhandler(404)
    def not_found(error: Exception) -> tuple[Response, int]:
        where = "order" if request.path.startswith("/api/orders/") else "page"
        return jsonify(error="not_found", message=f"no {where} at {request.path}"), 404

    @app.get("/health")
    def health() -> Response:
        return jsonify(status="ok")

    @app.get("/api/orders/")
    def list_orders() -> Response:
        orders = [asdict(o) for o in book().of(g.user)]
        return jsonify(orders=orders, count=len(orders))

    @app.post("/api/orders/")
    def place_order() -> tuple[Response, int]:
        item, quantity = parse_order(request.get_data())
        return jsonify(asdict(book().place(g.user, item, quantity))), 201

    @app.get("/api/orders/<int:order_id>")
    def show_order(order_id: int) -> Response:
        return jsonify(asdict(book().get(g.user, order_id)))

    @app.post("/api/orders/<int:order_id>/cancel")
    def cancel_order(order_id: int) -> Response:
        return jsonify(asdict(book().cancel(g.user, order_id)))

    return app
