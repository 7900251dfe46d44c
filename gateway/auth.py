"""Who is at the keyboard: sessions, one-time SMS codes and one-time code cards.

* The gateway secret (``gateway-secret.key``, 32 random bytes, 0600) keys every hash here.
* Sessions live in memory only (a restart logs everybody out, nothing else is lost); a session
  holds keyed hashes of the phone number, never the number.
* SMS codes: six digits from ``secrets``, stored only as an HMAC bound to the session, valid
  ``code_ttl_seconds``. Each issued code takes ``code_tries_per_code`` wrong answers **in total**,
  from any address or session, and is then burned: a new one must be requested, under the per-phone
  resend cooldown and daily cap — so the guesses per phone per day are bounded by the secret, not by
  how many addresses an attacker holds. As a second layer ``code_tries`` wrong answers lock out the
  pair (phone, client address) for ``code_lockout_seconds`` — a pair, so nobody can lock a stranger
  out from elsewhere.
* Code cards: 12 characters from an alphabet without look-alikes; the gateway knows only their
  keyed hashes (files in ``cards_dir`` written by ``veche gateway cards generate``); each card
  casts one ballot in its campaign. A wrong card code names no card, so its budget is gateway-wide:
  ``card_wrong_global`` unknown card codes from all clients together (``CardGuard``), past which card
  entry pauses (429) until the budget refills.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from chain.numbers import is_decimal
from gateway.config import Limits, RateLimit
from gateway.errors import ConfigError, Refusal
from gateway.phone import Identity, keyed_hash, phone_identity, phone_tag

log = logging.getLogger("veche.gateway.auth")

SECRET_BYTES = 32
CODE_DIGITS = 6
CARD_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CARD_LENGTH = 12
DAY_MS = 86_400_000


def load_or_create_secret(path: Path) -> bytes:
    """The gateway secret; created (0600, never overwritten) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_hex(SECRET_BYTES) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
    try:
        secret = bytes.fromhex(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"gateway secret {path} is unreadable or not hex: {exc}") from exc
    if len(secret) != SECRET_BYTES:
        raise ConfigError(f"gateway secret {path} must hold {SECRET_BYTES} bytes as hex")
    return secret


# --- sessions --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Challenge:
    """An SMS code sent to a phone for this session; only its keyed hash is kept."""

    tag: bytes
    identity: Identity
    code_mac: bytes
    expires_ms: int
    wrong: int = 0              # wrong answers so far, from any address or session


@dataclass(slots=True)
class Session:
    sid: str
    seen_ms: int
    identity: Identity | None = None
    challenge: Challenge | None = None
    next_path: str | None = None
    sent_to: str = ""                  # the masked number the code went to (shown on the code step)


class SessionStore:
    """Sessions in two bounded pools, so a flood of page views cannot push out people mid-login.

    New sessions start in the *anonymous* pool (anyone can create them by loading a page); a session
    moves to the *active* pool once it holds an SMS challenge or a login (both rate-limited). When a
    pool is full its least recently used session is dropped.
    """

    def __init__(self, *, max_sessions: int, ttl_s: int, clock: Callable[[], int]) -> None:
        self.max_active = max_sessions
        self.max_anonymous = max(1000, max_sessions // 2)
        self.ttl_ms = ttl_s * 1000
        self.clock = clock
        self._anonymous: OrderedDict[str, Session] = OrderedDict()
        self._active: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._anonymous) + len(self._active)

    def new(self) -> Session:
        session = Session(secrets.token_urlsafe(24), self.clock())
        self._anonymous[session.sid] = session
        while len(self._anonymous) > self.max_anonymous:
            self._anonymous.popitem(last=False)
        return session

    def activate(self, session: Session) -> None:
        self._anonymous.pop(session.sid, None)
        self._active[session.sid] = session
        self._active.move_to_end(session.sid)
        while len(self._active) > self.max_active:
            self._active.popitem(last=False)

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        pool = self._active if sid in self._active else self._anonymous
        session = pool.get(sid)
        if session is None:
            return None
        now = self.clock()
        if now - session.seen_ms > self.ttl_ms:
            del pool[sid]
            return None
        session.seen_ms = now
        pool.move_to_end(sid)
        return session

    def rotate(self, session: Session) -> Session:
        """A new id for the same session (after login: no session fixation); it becomes active."""
        self.drop(session)
        fresh = replace(session, sid=secrets.token_urlsafe(24), seen_ms=self.clock())
        self.activate(fresh)
        return fresh

    def drop(self, session: Session) -> None:
        self._anonymous.pop(session.sid, None)
        self._active.pop(session.sid, None)

    def prune(self) -> int:
        now = self.clock()
        dropped = 0
        for pool in (self._anonymous, self._active):
            stale = [sid for sid, s in pool.items() if now - s.seen_ms > self.ttl_ms]
            for sid in stale:
                del pool[sid]
            dropped += len(stale)
        return dropped


# --- SMS codes -------------------------------------------------------------------------------------


class BoundedMap(OrderedDict[bytes | tuple[bytes, str], tuple[int, int]]):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: bytes | tuple[bytes, str], value: tuple[int, int]) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


class CodeAuth:
    """Issues and checks SMS codes. ``clock`` gives unix milliseconds."""

    def __init__(self, secret: bytes, limits: Limits, clock: Callable[[], int], *, max_entries: int = 500_000) -> None:
        self.secret = secret
        self.limits = limits
        self.clock = clock
        self._sent = BoundedMap(max_entries)       # tag -> (day, count today)
        self._last_sent = BoundedMap(max_entries)  # tag -> (sent ms, 0)
        self._failures = BoundedMap(max_entries)   # (tag, client) -> (wrong tries, locked until ms)

    def tag(self, e164: str) -> bytes:
        return phone_tag(self.secret, e164)

    def _code_mac(self, session: Session, tag: bytes, code: str) -> bytes:
        return keyed_hash(self.secret, b"veche/gw/sms-code/v1", session.sid.encode(), tag, code.encode())

    def check_lockout(self, tag: bytes, client: str) -> None:
        tries, locked_until = self._failures.get((tag, client), (0, 0))
        now = self.clock()
        if locked_until > now:
            raise Refusal("err_locked_out", status=429, reason="code_lockout",
                          retry_after=max(1, (locked_until - now + 999) // 1000),
                          params={"minutes": str(max(1, (locked_until - now + 59_999) // 60_000))})

    def issue(self, session: Session, e164: str, client: str) -> str:
        """Make a code for ``e164`` bound to ``session``; return it (for the SMS text only)."""
        tag = self.tag(e164)
        self.check_lockout(tag, client)
        now = self.clock()
        last, _ = self._last_sent.get(tag, (0, 0))
        if last and now - last < self.limits.sms_resend_seconds * 1000:
            wait = (last + self.limits.sms_resend_seconds * 1000 - now + 999) // 1000
            raise Refusal("err_resend_wait", status=429, reason="sms_cooldown", retry_after=max(1, wait),
                          params={"seconds": str(max(1, wait))})
        day = now // DAY_MS
        sent_day, count = self._sent.get(tag, (day, 0))
        if sent_day != day:
            count = 0
        if count >= self.limits.sms_phone_daily:
            raise Refusal("err_daily_cap", status=429, reason="sms_daily_cap",
                          retry_after=max(1, ((day + 1) * DAY_MS - now) // 1000))
        code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
        self._sent.put(tag, (day, count + 1))
        self._last_sent.put(tag, (now, 0))
        session.challenge = Challenge(tag, phone_identity(self.secret, e164), self._code_mac(session, tag, code),
                                      now + self.limits.code_ttl_seconds * 1000)
        session.identity = None
        return code

    def undo_issue(self, session: Session) -> None:
        """The SMS could not be sent: forget the challenge and give the cooldown back."""
        challenge = session.challenge
        if challenge is None:
            return
        self._last_sent.pop(challenge.tag, None)
        day, count = self._sent.get(challenge.tag, (0, 0))
        if count:
            self._sent.put(challenge.tag, (day, count - 1))
        session.challenge = None

    def clear_phone(self, tag: bytes, *, sms_limits: bool = False) -> int:
        """An operator's unlock (``veche gateway unlock``): forget the wrong-code counts and lock-outs of
        this phone from every address; with ``sms_limits`` also its resend cooldown and daily SMS count.
        Returns how many (phone, address) entries were dropped."""
        held = [key for key in self._failures if isinstance(key, tuple) and key[0] == tag]
        for key in held:
            del self._failures[key]
        if sms_limits:
            self._sent.pop(tag, None)
            self._last_sent.pop(tag, None)
        return len(held)

    def verify(self, session: Session, code_text: str, client: str) -> Identity:
        """The identity behind the challenge if ``code_text`` is its code; else ``Refusal``."""
        challenge = session.challenge
        if challenge is None:
            raise Refusal("err_no_code", status=400, reason="code_without_request")
        self.check_lockout(challenge.tag, client)
        now = self.clock()
        if now >= challenge.expires_ms:
            session.challenge = None
            raise Refusal("err_code_expired", status=400, reason="code_expired")
        code = "".join(ch for ch in code_text if not ch.isspace())
        if not is_decimal(code, CODE_DIGITS) or len(code) != CODE_DIGITS:
            raise Refusal("err_code_format", status=400, reason="code_malformed")
        if hmac.compare_digest(self._code_mac(session, challenge.tag, code), challenge.code_mac):
            self._failures.pop((challenge.tag, client), None)
            session.challenge = None
            return challenge.identity
        challenge.wrong += 1
        if challenge.wrong >= self.limits.code_tries_per_code:
            session.challenge = None        # burned: every later answer, right or wrong, is refused
            log.info("an SMS code was burned after %d wrong answers", challenge.wrong)
            raise Refusal("err_code_burned", status=429, reason="code_burned", retry_after=1)
        tries, _ = self._failures.get((challenge.tag, client), (0, 0))
        tries += 1
        if tries >= self.limits.code_tries:
            self._failures.put((challenge.tag, client), (0, now + self.limits.code_lockout_seconds * 1000))
            session.challenge = None
            raise Refusal("err_locked_out", status=429, reason="code_lockout",
                          retry_after=self.limits.code_lockout_seconds,
                          params={"minutes": str(max(1, self.limits.code_lockout_seconds // 60))})
        self._failures.put((challenge.tag, client), (tries, 0))
        left = min(self.limits.code_tries - tries, self.limits.code_tries_per_code - challenge.wrong)
        raise Refusal("err_code_wrong", status=400, reason="code_wrong", params={"left": str(left)})


# --- code cards ------------------------------------------------------------------------------------


class CardGuard:
    """The gateway-wide budget of unknown card codes (``limits.card_wrong_global``).

    A wrong card code cannot be charged to a card (it names none), and per-address limits do not
    bound an attacker holding many addresses; so every unknown code, from anyone, spends one token
    of one bucket. While it is empty card entry is refused (429) before any code is looked up: card
    logins pause for everyone (SMS logins go on), which bounds the guesses per hour whatever the
    number of addresses (docs/GATEWAY.md gives the odds).
    """

    def __init__(self, limit: RateLimit, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.rate = limit.count / limit.seconds
        self.capacity = float(limit.count)
        self._tokens = self.capacity
        self._stamp = monotonic()
        self._monotonic = monotonic

    def _level(self) -> float:
        now = self._monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        return self._tokens

    def check(self) -> None:
        """Refuse card entry while the budget of wrong codes is spent."""
        level = self._level()
        if level < 1.0:
            raise Refusal("err_card_paused", status=429, reason="card_guessing",
                          retry_after=max(1, int((1.0 - level) / self.rate + 0.999)))

    def wrong(self) -> None:
        """An unknown card code was entered: spend one token of the gateway-wide budget."""
        self._tokens = self._level() - 1.0
        if self._tokens < 1.0 <= self._tokens + 1.0:
            log.warning("the gateway-wide budget of wrong card codes is spent: card entry pauses")


def normalize_card(text: str) -> str | None:
    """Upper-case card code without separators, or None if it cannot be a card code."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    compact = "".join(ch for ch in text.upper() if ch not in " -\t")
    if len(compact) != CARD_LENGTH or any(ch not in CARD_ALPHABET for ch in compact):
        return None
    return compact


def new_card_code() -> str:
    return "".join(secrets.choice(CARD_ALPHABET) for _ in range(CARD_LENGTH))


def format_card(code: str) -> str:
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def card_id(secret: bytes, code: str) -> bytes:
    return keyed_hash(secret, b"veche/gw/card/v1", code.encode())


def card_identity(secret: bytes, code: str, campaign_id: str) -> Identity:
    return Identity(keyed_hash(secret, b"veche/gw/card-index/v1", code.encode()),
                    keyed_hash(secret, b"veche/gw/card-vault/v1", code.encode()),
                    card_id=card_id(secret, code), card_campaign=campaign_id)


class CardBook:
    """Card hashes from ``cards_dir`` (one JSON file per generated batch), reloaded when it changes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cards: dict[bytes, str] = {}
        self._stamp: tuple[float, int] | None = None

    def _signature(self) -> tuple[float, int]:
        try:
            entries = list(self.directory.glob("*.json"))
        except OSError:
            return (0.0, 0)
        return (max((p.stat().st_mtime for p in entries), default=0.0), len(entries))

    def reload_if_changed(self) -> None:
        stamp = self._signature()
        if stamp == self._stamp:
            return
        cards: dict[bytes, str] = {}
        for path in sorted(self.directory.glob("*.json")):
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
                campaign_id = str(document["campaign_id"])
                for hex_id in document["card_ids"]:
                    cards[bytes.fromhex(hex_id)] = campaign_id
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.error("ignoring unreadable card file %s: %s", path.name, exc)
        self._cards = cards
        self._stamp = stamp
        log.info("loaded %d code cards from %s", len(cards), self.directory)

    def campaign_of(self, identifier: bytes) -> str | None:
        self.reload_if_changed()
        return self._cards.get(identifier)

    def __len__(self) -> int:
        return len(self._cards)


def write_card_batch(directory: Path, campaign_id: str, identifiers: list[bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{campaign_id}.{int(time.time() * 1000)}.{secrets.token_hex(3)}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"campaign_id": campaign_id, "card_ids": [i.hex() for i in identifiers]}) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)
    return path
