"""The legacy shop: a web shop on the standard library's http.server, orders in SQLite.

It is the monolith of this example: it serves the whole site (the home page, the catalogue,
the orders API) and knows nothing of `strangler`. Run it:

    python legacy_shop.py --port 9001 --database shop.sqlite3

The orders API, which `new_orders.py` takes over:
    POST /api/orders/             {"item": "teapot", "quantity": 2} -> 201, the order
    GET  /api/orders/             -> 200 {"orders": [...], "count": n}, the caller's orders
    GET  /api/orders/ID           -> 200, the order (404 unless it is the caller's)
    POST /api/orders/ID/cancel    -> 200, the order, cancelled (409 if it already was)
The caller is named by the X-User header (401 without it); errors are JSON:
{"error": "<code>", "message": "<text>"}.
"""

import argparse
import contextlib
import json
import re
import sqlite3
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer TEXT NOT NULL,
    item TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL
)
"""
HOME_PAGE = "<h1>The legacy shop</h1><a href='/api/catalog'>catalogue</a>"
CATALOGUE = [{"sku": "teapot", "price": 2500}, {"sku": "cups", "price": 900}]
ORDER_PATH = re.compile(r"^/api/orders/(\d+)$")
CANCEL_PATH = re.compile(r"^/api/orders/(\d+)/cancel$")


class Refused(Exception):
    def __init__(self, status, error, message):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def order_json(row):
    keys = ("id", "user", "item", "quantity", "status", "created_at")
    return dict(zip(keys, row, strict=True))


class Shop(BaseHTTPRequestHandler):
    server_version = "LegacyShop/1.0"
    protocol_version = "HTTP/1.1"
    database = "shop.sqlite3"

    def do_GET(self):
        self.handle_request("GET")

    def do_POST(self):
        self.handle_request("POST")

    def handle_request(self, method):
        path = self.path.split("?", 1)[0]
        try:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if path == "/health":
                return self.reply(200, {"status": "ok"})
            if path == "/" and method == "GET":
                return self.reply_html(HOME_PAGE)
            if path == "/api/catalog" and method == "GET":
                return self.reply(200, {"items": CATALOGUE})
            if path.startswith("/api/orders/"):
                db = sqlite3.connect(self.database, timeout=10)
                try:
                    with db:  # one transaction: committed, or rolled back on a refusal
                        status, document = self.orders(db, method, path, body)
                finally:
                    db.close()
                return self.reply(status, document)
            raise Refused(404, "not_found", f"no page at {path}")
        except Refused as refused:
            self.reply(refused.status, {"error": refused.error, "message": refused.message})

    def orders(self, db, method, path, body):
        user = (self.headers.get("X-User") or "").strip()
        if not user:
            raise Refused(401, "no_user", "the X-User header must name the customer")
        if path == "/api/orders/" and method == "POST":
            return 201, self.place(db, user, body)
        if path == "/api/orders/" and method == "GET":
            rows = db.execute(
                "SELECT id, customer, item, quantity, status, created_at FROM orders"
                " WHERE customer = ? ORDER BY id",
                (user,),
            ).fetchall()
            return 200, {"orders": [order_json(r) for r in rows], "count": len(rows)}
        found = ORDER_PATH.match(path)
        if found and method == "GET":
            return 200, self.find(db, user, int(found.group(1)))
        found = CANCEL_PATH.match(path)
        if found and method == "POST":
            order = self.find(db, user, int(found.group(1)))
            if order["status"] == "cancelled":
                raise Refused(409, "already_cancelled", "the order is cancelled already")
            db.execute("UPDATE orders SET status = 'cancelled' WHERE id = ?", (order["id"],))
            return 200, dict(order, status="cancelled")
        raise Refused(404, "not_found", f"no order at {path}")

    def place(self, db, user, body):
        try:
            fields = json.loads(body)
        except ValueError:
            fields = None
        if not isinstance(fields, dict):
            raise Refused(400, "malformed_json", "the body must be a JSON object")
        item = fields.get("item")
        if not isinstance(item, str) or not item.strip():
            raise Refused(400, "missing_item", "item: the name of a product is required")
        quantity = fields.get("quantity", 1)
        if type(quantity) is not int or not 1 <= quantity <= 100:
            raise Refused(400, "bad_quantity", "quantity: a whole number from 1 to 100")
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        cursor = db.execute(
            "INSERT INTO orders (customer, item, quantity, status, created_at)"
            " VALUES (?, ?, ?, 'placed', ?)",
            (user, item.strip(), quantity, now),
        )
        return order_json((cursor.lastrowid, user, item.strip(), quantity, "placed", now))

    def find(self, db, user, order_id):
        row = db.execute(
            "SELECT id, customer, item, quantity, status, created_at FROM orders"
            " WHERE id = ? AND customer = ?",
            (order_id, user),
        ).fetchone()
        if row is None:
            raise Refused(404, "not_found", "no order of yours has that id")
        return order_json(row)

    def reply(self, status, document):
        self.send(status, "application/json", json.dumps(document).encode())

    def reply_html(self, html):
        self.send(200, "text/html; charset=utf-8", html.encode())

    def send(self, status, content_type, data):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--database", default="shop.sqlite3")
    args = parser.parse_args()
    db = sqlite3.connect(args.database)
    db.execute("PRAGMA journal_mode=WAL")  # the new service writes the same file meanwhile
    db.execute(SCHEMA)
    db.close()
    Shop.database = args.database
    server = ThreadingHTTPServer((args.host, args.port), Shop)
    print(f"legacy shop on http://{args.host}:{args.port} (orders in {args.database})", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
