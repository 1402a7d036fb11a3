"""Locust load for the server: agents on the CTI WebSocket, callers through REST.

Theory of operation. Two kinds of user share one Locust run:

* ``Agent``: one per agent of the centre (``ACD_LOADTEST_AGENTS`` of them,
  ids ``{prefix}0000``...). It opens ``/v1/ws`` with its own token, logs in
  and goes ready, then works: takes each offer that arrives on its socket,
  accepts it, talks for a random time, hangs up, wraps up with a disposition,
  and now and then goes not ready for a short break. Every command is a
  Locust request of type ``WS`` named after the command, timed from sending
  it to its reply; a reply with ``ok: false`` is a failure, with the error id.
* ``Caller``: injects calls with ``POST /v1/calls`` into a random queue at a
  steady pace, and for a share of them (``ACD_LOADTEST_ABANDON``) waits a
  little and hangs up if the call is still waiting (``DELETE``).

Two custom Locust events (type ``CTI``) time the offers, from the moment
the caller user sent the POST (its wall clock, carried in the call's
``data`` and shown back in the offer's screen pop) to the moment the offer
arrived on the agent's socket; both ends run on this machine, so one clock
serves:

* ``time to offer`` is all of it, time spent waiting in the queue included;
* ``offer latency`` is the server's part, the figure it is judged by: it
  starts at the later of the POST and the moment this agent sent the command
  that made them available (``ready`` or ``wrap_up``), so a call that waited
  for a free agent counts only from when there was one. Starting at the
  command's sending, not at its reply, errs on the long side by one round
  trip.

Races the server resolves correctly are not failures of the server: an offer
withdrawn because its caller hung up can no longer be accepted, and a call
whose caller hung up during the talk can no longer be hung up (both refused
as ``unknown_call``); such refusals are counted under their own names,
``accept (caller gone)`` and ``hangup (caller gone)``, and the agent carries
on. Everything else the server refuses is a failure.

The WebSocket client is websockets' synchronous one: under Locust's gevent
its threads and sockets are green, so a thousand agents are a thousand cheap
greenlets. The settings come from the environment (``loadtest/run.py`` sets
them); run that script, not this file, unless you start the server yourself.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import time
from typing import Any

import gevent
from gevent.event import AsyncResult
from gevent.queue import Empty, Queue
from locust import HttpUser, User, between, constant_pacing, events, task
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from api.auth import Role, issue


def _setting(name: str, default: str) -> str:
    return os.environ.get(f"ACD_LOADTEST_{name}", default)


SECRET = _setting("SECRET", "")
AGENTS = int(_setting("AGENTS", "20"))
AGENT_PREFIX = _setting("AGENT_PREFIX", "lt")
QUEUES = [q for q in _setting("QUEUES", "q0").split(",") if q]
CALLERS = int(_setting("CALLERS", "2"))
CALLS_PER_SECOND_EACH = float(_setting("CALL_RATE_EACH", "1"))
TALK = tuple(float(x) for x in _setting("TALK", "2:6").split(":"))
WRAP_UP = tuple(float(x) for x in _setting("WRAP_UP", "0.5:2").split(":"))
BREAK_SHARE = float(_setting("BREAK_SHARE", "0.1"))
ABANDON_SHARE = float(_setting("ABANDON", "0.1"))
COMMAND_TIMEOUT = 30.0

_agent_numbers = itertools.count()


def _fire(
    kind: str, name: str, started: float, error: Exception | None = None, now: float | None = None
) -> None:
    events.request.fire(
        request_type=kind,
        name=name,
        response_time=((now or time.time()) - started) * 1000.0,
        response_length=0,
        exception=error,
        context={},
    )


class Refused(Exception):
    """The server answered a command with ``ok: false``."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('error_id')}: {error.get('message')}")
        self.error = error


class Agent(User):
    """An agent's desktop on the CTI WebSocket, working the offers it is given."""

    fixed_count = AGENTS
    wait_time = between(0, 0)

    def on_start(self) -> None:
        self.agent_id = f"{AGENT_PREFIX}{next(_agent_numbers):04d}"
        self.rng = random.Random(self.agent_id)
        self.offers: Queue[str] = Queue()
        self.replies: dict[str, AsyncResult] = {}
        self.commands = itertools.count()
        self.closing = False
        self.available_since = time.time()
        url = self.host.replace("http", "ws", 1) + "/v1/ws"
        token = issue(SECRET, Role.AGENT, agent_id=self.agent_id)
        started = time.time()
        self.connection = contextlib.ExitStack()
        self.socket: ClientConnection = self.connection.enter_context(
            connect(url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=30)
        )
        _fire("WS", "connect", started)
        self.reader = gevent.spawn(self._read)
        self.command("login")
        self.command("ready")

    def on_stop(self) -> None:
        self.closing = True
        try:
            self.connection.close()
        finally:
            self.reader.kill()

    def _read(self) -> None:
        try:
            for text in self.socket:
                arrived = time.time()
                message = json.loads(text)
                if "reply_to" in message:
                    waiting = self.replies.pop(message["reply_to"], None)
                    if waiting is not None:
                        waiting.set(message)
                elif message.get("type") == "reservation.state_changed":
                    self._offered(message["data"], arrived)
        except ConnectionClosed as closed:
            if not self.closing:
                _fire("WS", "socket closed", time.time(), closed)

    def _offered(self, data: dict[str, Any], arrived: float) -> None:
        if data.get("to_state") != "pending" or data.get("agent_id") != self.agent_id:
            return
        pop = data.get("screen_pop") or {}
        sent_at = ((pop.get("call") or {}).get("data") or {}).get("loadtest_sent_at")
        if sent_at is not None:
            _fire("CTI", "time to offer", float(sent_at), now=arrived)
            _fire("CTI", "offer latency", max(float(sent_at), self.available_since), now=arrived)
        self.offers.put(data["call_id"])

    def command(self, name: str, **args: Any) -> dict[str, Any]:
        """Send one command and wait for its reply; a refusal raises ``Refused``."""
        command_id = f"{name}-{next(self.commands)}"
        waiting = AsyncResult()
        self.replies[command_id] = waiting
        started = time.time()
        if name in ("ready", "wrap_up"):
            self.available_since = started
        self.socket.send(json.dumps({"id": command_id, "command": name, "args": args}))
        reply: dict[str, Any] = waiting.get(timeout=COMMAND_TIMEOUT)
        if not reply["ok"]:
            refused = Refused(reply["error"])
            if name in ("accept", "hangup") and reply["error"].get("error_id") == "unknown_call":
                _fire("WS", f"{name} (caller gone)", started)
            else:
                _fire("WS", name, started, refused)
            raise refused
        _fire("WS", name, started)
        return reply

    @task
    def work(self) -> None:
        try:
            call_id = self.offers.get(timeout=1.0)
        except Empty:
            return
        try:
            self.command("accept", call_id=call_id)
        except Refused:
            return  # counted; the next offer is another call
        gevent.sleep(self.rng.uniform(*TALK))
        with contextlib.suppress(Refused):  # the caller hung up first: wrap-up all the same
            self.command("hangup", call_id=call_id)
        gevent.sleep(self.rng.uniform(*WRAP_UP))
        self.command("wrap_up", disposition="loadtest", resolved=self.rng.random() < 0.7)
        if self.rng.random() < BREAK_SHARE:
            self.command("not_ready", reason="break")
            gevent.sleep(self.rng.uniform(1.0, 3.0))
            self.command("ready")


class Caller(HttpUser):
    """Injects calls into the queues; some hang up while still waiting."""

    fixed_count = CALLERS
    wait_time = constant_pacing(1.0 / CALLS_PER_SECOND_EACH)

    def on_start(self) -> None:
        token = issue(SECRET, Role.ADMIN)
        self.client.headers["Authorization"] = f"Bearer {token}"
        self.rng = random.Random()

    @task
    def call(self) -> None:
        body = {
            "ani": f"+1555{self.rng.randrange(10**7):07d}",
            "queue": self.rng.choice(QUEUES),
            "data": {"loadtest_sent_at": f"{time.time():.6f}"},
        }
        response = self.client.post("/v1/calls", json=body, name="POST /v1/calls")
        if response.status_code != 201:
            return  # a failure in Locust's statistics already
        call_id = response.json()["id"]
        if self.rng.random() >= ABANDON_SHARE:
            return
        gevent.sleep(self.rng.uniform(0.2, 2.0))
        with self.client.get(
            f"/v1/calls/{call_id}", name="GET /v1/calls/{id}", catch_response=True
        ) as response:
            if response.status_code == 404:  # already over: nothing to hang up
                response.success()
                return
            waiting = response.ok and response.json().get("state") == "queued"
        if waiting:
            with self.client.delete(
                f"/v1/calls/{call_id}", name="DELETE /v1/calls/{id}", catch_response=True
            ) as response:
                if response.status_code in (404, 409):  # it was answered or ended meanwhile
                    response.success()
