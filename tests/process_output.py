"""What a child process (openssl, tshark) writes to a pipe, collected line by line by a thread
as it comes, so a test can wait for a line without blocking on the pipe."""

from __future__ import annotations

import re
import threading
import time
from typing import IO, List


class OutputLines:
    def __init__(self, stream: IO[bytes], who: str):
        self.who = who
        self._lines: List[str] = []
        self._done = False
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            with self._cond:
                self._lines.append(raw.decode("utf-8", "replace"))
                self._cond.notify_all()
        with self._cond:
            self._done = True
            self._cond.notify_all()

    @property
    def text(self) -> str:
        with self._cond:
            return "".join(self._lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        """Waits until a line matches the regular expression ``pattern``; AssertionError (with
        everything written so far) when the stream ends or the time is up first."""
        regex = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self._lines:
                    match = regex.search(line)
                    if match:
                        return match
                left = deadline - time.monotonic()
                if self._done or left <= 0:
                    raise AssertionError(f"{self.who} never printed {pattern!r}; output:\n{''.join(self._lines)}")
                self._cond.wait(left)

    def join(self, timeout: float) -> None:
        """Waits for the stream's end (the process closed it)."""
        self._reader.join(timeout)
