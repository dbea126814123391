"""gunicorn settings for the monolith: address and workers from the environment.

gthread, not sync: a sync worker closes the connection after every response, so a proxy
in front would pay a TCP handshake per request; gthread keeps connections alive and
serves several at once per worker. Measured figures are in the issue's closing note.
"""

import multiprocessing
import os

bind = os.environ.get("MONOLITH_BIND", "127.0.0.1:8001")
# One worker per core: the Node `cluster` analogue. SQLite in WAL mode is shared safely.
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count())
worker_class = os.environ.get("MONOLITH_WORKER_CLASS", "gthread")
threads = int(os.environ.get("MONOLITH_THREADS", "4"))
# Longer than a fronting proxy's idle pool timeout, so the proxy, not gunicorn, closes idle
# connections and never sends on a socket that gunicorn is closing.
keepalive = int(os.environ.get("MONOLITH_KEEPALIVE", "75"))
timeout = 30
graceful_timeout = 10
# Codes travel only in bodies, so the access log's request line holds no secret.
accesslog = os.environ.get("MONOLITH_ACCESS_LOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("MONOLITH_LOG_LEVEL", "info")
proc_name = "strangler-monolith"
# gunicorn ≥ 25 opens a control socket at one fixed per-user path: every monolith, service and
# test instance on this machine would unlink each other's. Nothing here uses gunicornc.
control_socket_disable = True
