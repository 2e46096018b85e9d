import socket

from django.core.management import get_commands
from django.core.servers.basehttp import WSGIRequestHandler

from recognizer.management.commands.runserver import NoDelayWSGIServer


def test_runserver_is_the_recognizer_one_that_turns_nagle_off():
    assert get_commands()["runserver"] == "recognizer"


def test_runserver_connections_send_without_waiting_for_acknowledgements():
    server = NoDelayWSGIServer(("127.0.0.1", 0), WSGIRequestHandler)
    try:
        with socket.create_connection(server.server_address, timeout=5):
            connection, _ = server.get_request()
            with connection:
                assert connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        server.server_close()
