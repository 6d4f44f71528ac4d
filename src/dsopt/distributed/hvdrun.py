"""``horovodrun`` whose rendezvous server listens on 127.0.0.1 only: dsopt's one-machine Horovod launches.

horovodrun's gloo rendezvous (an HTTP key-value server the workers meet at) binds every interface, even with
``--network-interfaces lo`` (horovod.runner.util.network.find_port binds ``('', port)``), so anyone who can reach
the machine could talk to it while a cell trains (issue 23 item 3). This entry point hands horovodrun a
port finder that binds the same free port on 127.0.0.1, then runs horovodrun's own command line unchanged. The
workers are told the loopback address already (``--network-interfaces lo``).

Usage (the supervisor's): ``python -m dsopt.distributed.hvdrun -np N -H localhost:N --gloo ... COMMAND``.
"""
from __future__ import annotations

import sys


def loopback_find_port(find_port):
    """``find_port(server_factory)`` that offers ``server_factory`` 127.0.0.1 instead of every interface."""

    def find(server_factory):
        return find_port(lambda addr: server_factory(("127.0.0.1", addr[1])))

    return find


def main() -> int:
    from horovod.runner.http import http_server
    from horovod.runner.launch import run_commandline

    http_server.find_port = loopback_find_port(http_server.find_port)
    sys.argv[0] = "horovodrun"
    return run_commandline()


if __name__ == "__main__":
    sys.exit(main())
