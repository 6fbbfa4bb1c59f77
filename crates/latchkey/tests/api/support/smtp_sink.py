"""A real SMTP server for the e-mail tests (aiosmtpd).

Usage: smtp_sink.py DIR [PORT]. Listens on 127.0.0.1 (PORT, or a free one), prints the
port on stdout once it accepts connections, and writes each message it receives to DIR
as NNNN.eml (written to a temporary name first, then renamed, so a reader never sees a
half-written file). Runs until killed or until stdin closes.
"""

import asyncio
import os
import socket
import sys

from aiosmtpd.controller import Controller


class Store:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = os.path.join(self.directory, "%04d.eml" % self.count)
        with open(name + ".tmp", "wb") as out:
            out.write(b"X-Envelope-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
            out.write(envelope.original_content or envelope.content)
        os.rename(name + ".tmp", name)
        return "250 OK"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    directory = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else free_port()
    os.makedirs(directory, exist_ok=True)
    existing = len([f for f in os.listdir(directory) if f.endswith(".eml")])
    store = Store(directory)
    store.count = existing
    controller = Controller(store, hostname="127.0.0.1", port=port)
    controller.start()
    print(port, flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
