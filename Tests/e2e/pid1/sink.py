"""SMTP sink inside the test container: every message it is given becomes one JSON file
(envelope, raw bytes) in --dir, written under a temporary name and renamed, so a reader
never sees half a file. Writes --dir/ready once it listens."""

import argparse
import json
import os
import time
import uuid

from aiosmtpd.controller import Controller


class Store:
    def __init__(self, directory: str) -> None:
        self.directory = directory

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        name = f"{time.time():.6f}-{uuid.uuid4().hex}"
        tmp = os.path.join(self.directory, f".{name}.tmp")
        with open(tmp, "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                       "data": envelope.original_content.decode("latin-1")}, f)
        os.rename(tmp, os.path.join(self.directory, f"{name}.json"))
        return "250 2.0.0 Ok: stored"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    a = p.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    controller = Controller(Store(a.dir), hostname="127.0.0.1", port=a.port)
    controller.start()
    open(os.path.join(a.dir, "ready"), "w").close()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
