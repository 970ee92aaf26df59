"""Event handlers: a command run for each event, as Serf's are (``--on-change``).

The command gets the event as one JSON object on its standard input. Hooks
never block the peer: events wait in a bounded queue (a full queue drops and
counts), commands run one at a time in their own task, each for at most
:data:`HOOK_TIME` seconds; a failure is logged and counted.
"""

from __future__ import annotations

import json
import logging
import subprocess
from typing import Final, NoReturn

import trio

from .events import Event

__all__ = ["HOOK_QUEUE", "HOOK_TIME", "Hook"]

log = logging.getLogger("trio_gossip")

#: Events waiting for the hook at most; more are dropped (and counted).
HOOK_QUEUE: Final = 64
#: Seconds one run of the hook may take before it is killed.
HOOK_TIME: Final = 10.0


class Hook:
    """Runs ``command`` (a shell command line) for each event offered."""

    def __init__(self, command: str, name: str) -> None:
        self.command = command
        self.name = name
        self._send, self._receive = trio.open_memory_channel[Event](HOOK_QUEUE)
        #: Runs that ended well, that failed (status, time limit, cannot start), events dropped.
        self.ran = 0
        self.failed = 0
        self.dropped = 0

    def offer(self, event: Event) -> None:
        """Queue ``event`` for the hook; never blocks."""
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("%s: hook too slow, %d event(s) dropped", self.name, self.dropped)

    async def run(self) -> NoReturn:
        """Run the command for each queued event, one at a time, forever."""
        async for event in self._receive:
            await self._run_one(event)
        raise AssertionError("the hook's queue never closes")  # pragma: no cover

    async def _run_one(self, event: Event) -> None:
        data = json.dumps({"peer": self.name, **event.as_json()}, ensure_ascii=False).encode()
        try:
            with trio.fail_after(HOOK_TIME):
                done = await trio.run_process(
                    self.command,
                    shell=True,
                    stdin=data + b"\n",
                    check=False,
                    stdout=subprocess.DEVNULL,
                )
        except trio.TooSlowError:
            self.failed += 1
            log.warning("%s: hook took more than %g s: killed", self.name, HOOK_TIME)
            return
        except OSError as exc:
            self.failed += 1
            log.warning("%s: hook cannot run: %s", self.name, exc)
            return
        if done.returncode != 0:
            self.failed += 1
            log.warning("%s: hook exited with status %d", self.name, done.returncode)
        else:
            self.ran += 1
