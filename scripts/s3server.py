"""The local cluster's object store (`scripts/cluster.sh`): moto's S3 server, with each
write request made atomic.

    python scripts/s3server.py --host 127.0.0.1 --port 9400 --bucket reclake

Why moto: of the S3 servers the registries here offer (moto from PyPI, s3proxy from Maven
Central, SeaweedFS via `go install`), it is the one that implements the S3 conditional writes
both Delta engines commit with (`If-None-Match: *` on PutObject, answering 412), installs
with pip in seconds and runs in one process. What it does not emulate is in docs/deploy.md.

moto checks `If-None-Match` and then stores the object in two steps, without a lock, while
its server answers requests on many threads: two racing conditional PUTs of one key could
both succeed, which real S3 never allows. Mutating requests (PUT, POST, DELETE) therefore go
through one lock; reads stay concurrent.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

MUTATING = frozenset({"PUT", "POST", "DELETE"})


class AtomicWrites:
    """WSGI middleware: one mutating request at a time, so a conditional write's check and its
    store happen together, as on S3."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD") not in MUTATING:
            return self.app(environ, start_response)
        with self.lock:
            # The body must be produced inside the lock: moto does its work while iterating.
            return list(self.app(environ, start_response))


def main(argv: list[str] | None = None) -> int:
    """Serve S3 (and moto's other services) on host:port until SIGTERM; create the bucket."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9400)
    parser.add_argument("--bucket", action="append", default=[], help="bucket to create")
    args = parser.parse_args(argv)

    app = AtomicWrites(DomainDispatcherApplication(create_backend_app))
    server = make_server(
        args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler
    )
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    _create_buckets(args.host, args.port, args.bucket)
    print(f"s3server: serving http://{args.host}:{args.port}", flush=True)
    server.serve_forever()
    return 0


def _create_buckets(host: str, port: int, buckets: list[str]) -> None:
    # In-process, before serving: moto's S3 backend is shared by every request of the server.
    from moto.backends import get_backend

    backend = get_backend("s3")["123456789012"]["global"]
    for bucket in buckets:
        backend.create_bucket(bucket, "us-east-1")


if __name__ == "__main__":
    sys.exit(main())
