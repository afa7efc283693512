"""``--ray-address``: reachable, or refused in seconds with the address named.

``ray.init(address=...)`` waits a minute or more for a cluster that is not there before it gives
up. A plain TCP connection to the head's port answers in milliseconds (refused) or at most
`CONNECT_TIMEOUT` seconds (a silent host), and a listener that is no gRPC server (Ray's head is
one) stays silent after an HTTP/2 hello, so the run checks both first, before anything loads:
at most ``2 * CONNECT_TIMEOUT`` seconds.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from deception_core.base.errors import UsageError

#: seconds a TCP connection to the Ray head may take before the address counts as unreachable
CONNECT_TIMEOUT = 5.0
GCS_PORT = 6379  # ``ray start --head``'s default
CLIENT_PORT = 10001  # Ray Client (``ray://``) default
#: where a ``ray start`` on this machine records its address (what ``address="auto"`` reads)
CURRENT_CLUSTER_FILE = Path("/tmp/ray/ray_current_cluster")


def _split(address: str, default_port: int) -> tuple[str, int]:
    if address.startswith("["):  # [IPv6]:port
        host, _, rest = address[1:].partition("]")
        port_text = rest.lstrip(":")
    else:
        host, sep, port_text = address.rpartition(":")
        if not sep:
            host, port_text = address, ""
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise UsageError(f"--ray-address {address!r}: the port {port_text!r} is not a number; "
                         "give HOST:PORT such as 10.0.0.5:6379, ray://HOST:10001, or auto") from None
    if not host or not 0 < port < 65536:
        raise UsageError(f"--ray-address {address!r} is not HOST:PORT; give e.g. 10.0.0.5:6379, ray://HOST:10001 or auto")
    return host, port


def _auto_address() -> str:
    from_env = os.environ.get("RAY_ADDRESS", "").strip()
    if from_env and from_env != "auto":
        return from_env
    try:
        recorded = CURRENT_CLUSTER_FILE.read_text().strip()
    except OSError:
        recorded = ""
    if not recorded:
        raise UsageError(
            "--ray-address auto: no Ray cluster is running on this machine (no RAY_ADDRESS and no "
            f"{CURRENT_CLUSTER_FILE}); start one with `ray start --head`, give HEAD:6379, or leave "
            "--ray-address out to start a local Ray instance"
        )
    return recorded


#: what an HTTP/2 client sends first (the connection preface and an empty SETTINGS frame); Ray's
#: GCS and Ray Client are gRPC servers, which answer it with their own SETTINGS at once
_HTTP2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _answers(connection: socket.socket) -> bool:
    """Whether the server says anything (or closes) within `CONNECT_TIMEOUT` after an HTTP/2 hello.

    Only silence counts against it: a server behind TLS, or another protocol, answers or hangs up
    at once, and ``ray.init`` then reports what it finds; a listener that never answers would make
    ``ray.init`` wait for minutes.
    """
    try:
        connection.sendall(_HTTP2_HELLO)
        connection.recv(9)
    except TimeoutError:
        return False
    except OSError:
        return True  # reset or closed: an answer of sorts
    return True


def check_ray_address(address: str) -> None:
    """Raise `UsageError` naming ``address`` unless a TCP connection to it opens within `CONNECT_TIMEOUT` s."""
    given = address.strip()
    if not given:
        raise UsageError("--ray-address is empty; give HEAD:PORT, ray://HEAD:10001 or auto, or leave it out")
    if given == "local":
        return  # ray.init starts a new local instance
    target = _auto_address() if given == "auto" else given
    if target.startswith("ray://"):
        host, port = _split(target[len("ray://"):].split("/")[0], CLIENT_PORT)
    else:
        host, port = _split(target, GCS_PORT)
    shown = given if given == target else f"{given} ({target})"
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT) as connection:
            if _answers(connection):
                return
        raise UsageError(
            f"--ray-address {shown}: {host}:{port} accepts connections but gave no answer within "
            f"{CONNECT_TIMEOUT:g} s, so it is no Ray head node (Ray's GCS answers at once). Check the port "
            "(`ray start --head` prints the address to give; the default is 6379), or leave --ray-address out "
            "to start a local Ray instance"
        )
    except TimeoutError:
        why = f"no answer within {CONNECT_TIMEOUT:g} s"
    except socket.gaierror as error:
        why = f"the host name does not resolve ({error.strerror or error})"
    except OSError as error:
        why = error.strerror or type(error).__name__
    raise UsageError(
        f"--ray-address {shown}: cannot reach a Ray cluster at {host}:{port} ({why}). Check that its head "
        "node runs (`ray start --head` prints the address to give) and that this machine can reach it, or "
        "leave --ray-address out to start a local Ray instance"
    )
