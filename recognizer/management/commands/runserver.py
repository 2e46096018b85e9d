"""`runserver`, with Nagle's algorithm off on every connection.

Django's development server writes a response's headers and its body in two sends. On a
keep-alive connection, which is what browsers use, Nagle's algorithm holds the body back until
the client acknowledges the headers, and the client delays that acknowledgement by up to 40 ms:
each guess took about 60 ms instead of 8 (`python -m bench.latency`).
"""

import socket

from django.contrib.staticfiles.management.commands.runserver import Command as StaticfilesRunserverCommand
from django.core.servers.basehttp import WSGIServer


class NoDelayWSGIServer(WSGIServer):
    def get_request(self) -> tuple[socket.socket, tuple]:
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address


class Command(StaticfilesRunserverCommand):
    server_cls = NoDelayWSGIServer
