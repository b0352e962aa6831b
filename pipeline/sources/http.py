"""HTTP for connectors: rate limits honoured, 5xx and connection errors retried with jittered back-off,
refused credentials reported in one line."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from pipeline.sources.connector import AccessDenied, QuotaSpent, Request, Response, SourceError

log = logging.getLogger("pantau.ingest")

RESET_HEADERS = ("x-rate-limit-reset", "x-ratelimit-reset", "ratelimit-reset")
REMAINING_HEADERS = ("x-rate-limit-remaining", "x-ratelimit-remaining", "ratelimit-remaining")
QUOTA_REASONS = (b"quotaExceeded", b"dailyLimitExceeded", b"rateLimitExceeded")
"""YouTube answers a spent quota with 403 and one of these reasons: no credential problem."""
CREDENTIAL_REASONS = (b"keyInvalid", b"OAuthException")
"""400 answers that mean a refused credential: YouTube's invalid API key, the Graph API's token errors."""
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""The most a connector reads of one answer, counted after decompression: a page of posts is kilobytes, so
a bigger body is a misbehaving server (or a compression bomb) and would otherwise fill the memory."""
LONGEST_RATE_WAIT = 3600.0
"""A reset header further ahead than this is treated as this (a clock or a header gone wrong)."""


def reset_delay(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds until the platform's window resets, from whichever header it sends: ``Retry-After``
    (seconds or an HTTP date), X's ``x-rate-limit-reset`` (epoch seconds), Mastodon's
    ``x-ratelimit-reset`` (an ISO time) or ``ratelimit-reset`` (seconds)."""
    retry = headers.get("retry-after")
    if retry:
        try:
            return max(0.0, float(retry))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(retry).timestamp() - now)
            except (TypeError, ValueError):
                pass
    for name in RESET_HEADERS:
        value = headers.get(name)
        if not value:
            continue
        try:
            number = float(value)
        except ValueError:
            try:
                stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return max(0.0, stamp.astimezone(UTC).timestamp() - now)
        return max(0.0, number - now) if number > 1e9 else max(0.0, number)  # epoch, or seconds to go
    return None


class RateState:
    """What the last answer said about the rate limit; shown by ``pantau ingest status``."""

    def __init__(self) -> None:
        self.remaining: int | None = None
        self.reset_at: float | None = None
        self.waiting_until: float | None = None
        self.limited: int = 0
        """429 answers so far."""


class Fetcher:
    def __init__(
        self,
        name: str,
        credential: str,
        auth: Mapping[str, str],
        max_attempts: int,
        backoff_max: float,
        stop: threading.Event | None = None,
        timeout: float = 30.0,
        on_wait: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.credential = credential
        self.max_attempts = max_attempts
        self.backoff_max = backoff_max
        self.stop = stop or threading.Event()
        self.rate = RateState()
        self.on_wait = on_wait
        self.client = httpx.Client(
            headers={"user-agent": "pantau-banten/1 (+https://github.com/pantau-banten)", **auth},
            timeout=timeout,
            follow_redirects=False,  # followed by _get, which never reads a redirect's body
        )

    def close(self) -> None:
        self.client.close()

    def _sleep(self, seconds: float) -> None:
        self.rate.waiting_until = time.time() + seconds
        if self.on_wait:
            self.on_wait()
        self.stop.wait(seconds)
        self.rate.waiting_until = None
        if self.stop.is_set():
            raise SourceError(f"{self.name}: stopped")

    def fetch(self, request: Request) -> Response:
        # Known to be spent: wait for the window to reset before asking.
        if self.rate.remaining == 0 and self.rate.reset_at and self.rate.reset_at > time.time():
            wait = min(self.rate.reset_at - time.time() + 1, LONGEST_RATE_WAIT)
            log.warning("%s: rate limit spent, waiting %.0f s for its reset", self.name, wait)
            self._sleep(wait)
        attempt = 0
        delay = 1.0
        while True:
            try:
                answer, body = self._get(request)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                status = None
            else:
                response = Response(
                    answer.status_code, {k.lower(): v for k, v in answer.headers.items()}, body
                )
                self._note(response.headers)
                status = answer.status_code
                if status in request.accept:
                    return response
                if status == 403 and any(reason in body for reason in QUOTA_REASONS):
                    raise QuotaSpent(f"{self.name}: the platform's quota is used ({excerpt(body)})")
                if status in (401, 403) or (
                    status == 400 and any(reason in body for reason in CREDENTIAL_REASONS)
                ):
                    raise AccessDenied(
                        f"{self.name}: {status} {answer.reason_phrase} from {bare_url(request.url)}: "
                        f"check {self.credential} and the app's access level ({excerpt(body)})"
                    )
                if status == 429:
                    self.rate.limited += 1
                    reset = reset_delay(response.headers, time.time())
                    wait = min(reset + 1 if reset is not None else delay, LONGEST_RATE_WAIT)
                    log.warning("%s: 429 Too Many Requests, waiting %.0f s for the reset", self.name, wait)
                    self._sleep(wait)
                    continue  # a 429 is not a failure: it is retried as often as the platform asks
                if status < 500:
                    if status >= 400:
                        raise SourceError(
                            f"{self.name}: {status} from {bare_url(request.url)}: {excerpt(body)}"
                        )
                    return response
                problem = f"{status} {answer.reason_phrase}"
            attempt += 1
            if attempt >= self.max_attempts:
                raise SourceError(
                    f"{self.name}: {bare_url(request.url)} failed {attempt} times, last: {problem}"
                )
            wait = random.uniform(delay / 2, delay)  # jitter: many connectors do not retry in step
            log.warning(
                "%s: %s from %s; try %d in %.1f s",
                self.name,
                problem,
                bare_url(request.url),
                attempt + 1,
                wait,
            )
            self._sleep(wait)
            delay = min(delay * 2, self.backoff_max)

    def _get(self, request: Request) -> tuple[httpx.Response, bytes]:
        """The answer and its body, read up to ``MAX_RESPONSE_BYTES`` (a bigger one is a ``SourceError``,
        not retried: it would be as big again). Redirects are followed here, not by httpx, which would
        read each redirect's body whole, however large."""
        answer = self.client.send(  # params None: httpx keeps a query written in the URL
            self.client.build_request(
                "GET", request.url, params=dict(request.params) or None, headers=dict(request.headers)
            ),
            stream=True,
        )
        try:
            for _ in range(self.client.max_redirects):
                following = answer.next_request
                if following is None:
                    break
                answer.close()  # a redirect's body is never read
                answer = self.client.send(following, stream=True)
            else:
                if answer.next_request is not None:
                    raise SourceError(
                        f"{self.name}: {bare_url(request.url)} redirects more than "
                        f"{self.client.max_redirects} times"
                    )
            too_large = (
                f"{self.name}: the answer from {bare_url(request.url)} is larger than "
                f"{MAX_RESPONSE_BYTES // (1024 * 1024)} MiB"
            )
            announced = answer.headers.get("content-length", "")
            if announced.isdigit() and int(announced) > MAX_RESPONSE_BYTES:
                raise SourceError(f"{too_large} ({announced} bytes announced); not read")
            body = bytearray()
            for chunk in answer.iter_bytes():
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    raise SourceError(f"{too_large}; not read")
            return answer, bytes(body)
        finally:
            answer.close()

    def _note(self, headers: Mapping[str, str]) -> None:
        for name in REMAINING_HEADERS:
            if name in headers:
                try:
                    self.rate.remaining = int(float(headers[name]))
                except ValueError:
                    self.rate.remaining = None
                break
        delay = reset_delay({k: v for k, v in headers.items() if k != "retry-after"}, time.time())
        self.rate.reset_at = time.time() + delay if delay is not None else None


def bare_url(url: str) -> str:
    """The URL without its query (which may carry an API key)."""
    return url.split("?", 1)[0]


def excerpt(body: bytes) -> str:
    text = " ".join(body.decode("utf-8", "replace").split())
    return text[:200] or "no body"
