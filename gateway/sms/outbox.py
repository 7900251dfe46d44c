"""The development provider (ARCHITECTURE §6): one JSON line ``{"to", "text"}`` per message in
``<gateway home>/sms-outbox.jsonl`` (mode 0600), flushed at once so readers see it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO

from gateway.errors import SmsError


class OutboxProvider:
    name = "outbox"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file: IO[str] = os.fdopen(fd, "a", encoding="utf-8")

    async def send(self, to: str, text: str) -> None:
        try:
            self._file.write(json.dumps({"to": to, "text": text}, ensure_ascii=False) + "\n")
            self._file.flush()
        except OSError as exc:
            raise SmsError(f"cannot write the SMS outbox {self.path}: {exc.strerror}", "io") from exc

    async def check(self) -> None:
        if self._file.closed:
            raise SmsError(f"the SMS outbox {self.path} is closed", "io")

    async def close(self) -> None:
        self._file.close()
