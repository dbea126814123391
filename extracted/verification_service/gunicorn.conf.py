"""gunicorn settings of the verification service; every value can be overridden by env."""

import logging
import multiprocessing
import os

bind = os.environ.get("VERIFICATION_BIND", "127.0.0.1:8002")
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count())
# Threads keep client connections alive (the proxy reuses them) without a worker per socket.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
keepalive = 5
timeout = 30
graceful_timeout = 10
accesslog = os.environ.get("VERIFICATION_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("VERIFICATION_LOG_LEVEL", "info")
proc_name = "verification-service"
# gunicorn >= 25 opens a control socket at one fixed per-user path: the monolith, the service
# and every test instance on a machine would unlink each other's. Nothing here uses it.
control_socket_disable = True


def on_starting(server):
    # The app logs sends and checks (destinations masked) under its package name; gunicorn
    # only configures its own loggers, so give ours a handler before the workers fork.
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
    )
    logger = logging.getLogger("strangler.extracted.verification_service")
    logger.setLevel(loglevel.upper())
    logger.addHandler(handler)
