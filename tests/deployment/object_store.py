"""The deployment's S3-compatible object store: moto's server (the real S3 HTTP API), on a port of its own.

Run as ``python -m tests.deployment.object_store PORT``. SIGUSR1 stops serving (connections are refused, as with a
stopped store) and SIGUSR2 serves again with every object kept, like a store whose disk outlives its process:
moto itself keeps objects in memory only, so a real restart would lose them. SIGTERM ends it.
"""

import signal
import sys
import threading

from moto.server import ThreadedMotoServer


def main(port: int) -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    lock = threading.Lock()
    serving = threading.Event()
    stop = threading.Event()

    def up(*_: object) -> None:
        with lock:
            if not serving.is_set():
                server.start()
                serving.set()
        print("serving", flush=True)

    def down(*_: object) -> None:
        print("stop requested", flush=True)
        with lock:
            if serving.is_set():
                server.stop()
                serving.clear()
        print("stopped", flush=True)

    signal.signal(signal.SIGUSR1, lambda *_: threading.Thread(target=down).start())
    signal.signal(signal.SIGUSR2, lambda *_: threading.Thread(target=up).start())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    up()
    print(f"object store serving on 127.0.0.1:{port}", flush=True)
    # Wake up often: Python runs signal handlers in the main thread only, and a signal the kernel delivers to one of
    # the server's threads does not interrupt a wait without a timeout (the store once served on for 60 s after two
    # SIGUSR1s in a full suite run).
    while not stop.wait(0.2):
        pass
    down()


if __name__ == "__main__":
    main(int(sys.argv[1]))
