"""One backup, restore, drill or retention run at a time per environment: the run holds a lease, the
object `<env>/lease.json` in the bucket, naming who holds it (user@host, pid, operation), since when
and until when. A thread renews it while the run lives; the run removes it at its end. A killed
run's lease expires (`backup.lease_ttl`) and the next run takes it over, saying so; on the controller
that took it, as soon as its process is gone.

The lease is created with S3's conditional write (`If-None-Match: *`: created only when no lease is
there) and renewed or taken over with `If-Match` on the ETag read, so two runs can never both believe
they hold it; SeaweedFS (4.x) and AWS S3 honour both. Every write is also read back and its token
compared, which catches a store that ignored the condition when the other write landed first; a store
that ignores conditions and lets both writes land in the same instant is not protected (none of the
stores the profiles name does).

A restore or drill marks the set it reads with `restore-in-progress`, whose body names the lease of
its run (key and token): the marker is live only while that lease is. The next run clears markers no
live lease holds (a run killed while reading) and reports them."""

from __future__ import annotations

import datetime
import getpass
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from botocore.exceptions import BotoCoreError, ClientError
from pyinfra.api.exceptions import DeployError

from gpuaas.backup.sets import IN_USE, LEASE, list_sets, prefix

Log = Callable[[str], None]
#: What a store answers when a conditional write finds the object there (or changed) already.
_CONFLICTS = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
#: How often a waiting run looks at the lease again.
POLL_SECONDS = 2.0
#: Tokens of leases this process released but could not remove (the store did not answer): a later
#: run of this process takes them over instead of waiting for them to expire.
_ABANDONED: set[str] = set()


class LeaseHeld(DeployError):
    """Another live run holds the environment's lease; the message names it, its operation and expiry."""


class LeaseLost(DeployError):
    """This run's lease was taken over (the run stalled past its expiry): it stops before changing more."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _stamp(moment: datetime.datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER: a bare container
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


@dataclass
class LeaseRecord:
    """The lease object's content."""

    holder: str
    pid: int
    operation: str
    token: str
    acquired: str
    expires: str
    #: The set the run writes or reads, once it knows it ("" until then).
    set_id: str = ""

    def expired(self, now: datetime.datetime) -> bool:
        return datetime.datetime.fromisoformat(self.expires) <= now

    def describe(self) -> str:
        on = f" of set {self.set_id}" if self.set_id else ""
        return (
            f"{self.holder} (pid {self.pid}), running {self.operation}{on} since {self.acquired}, "
            f"lease expiring {self.expires}"
        )

    @classmethod
    def parse(cls, body: bytes) -> LeaseRecord | None:
        """The record, or None for an object that is not one (it then counts as expired)."""
        try:
            data = json.loads(body.decode())
            return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})
        except (ValueError, TypeError, AttributeError):
            return None


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # running, as another user
    return True


def dead_here(record: LeaseRecord) -> bool:
    """Whether the run holding `record` is known dead on this controller: a lease this process gave up,
    or one taken here (same user@host) by a process that is no longer running."""
    if record.token in _ABANDONED:
        return True
    return record.holder == _who() and record.pid > 0 and record.pid != os.getpid() and not _pid_running(record.pid)


def _conflict(error: ClientError) -> bool:
    answer = error.response.get("Error", {}).get("Code", "")
    status = str(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return answer in _CONFLICTS or status in _CONFLICTS


def read_lease(s3, bucket: str, environment: str) -> tuple[LeaseRecord | None, str | None]:
    """The environment's lease and its ETag; (None, None) when no run holds one."""
    try:
        answer = s3.get_object(Bucket=bucket, Key=f"{environment}/{LEASE}")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None, None
        raise
    record = LeaseRecord.parse(answer["Body"].read())
    if record is None:
        # An object that is not a lease holds nothing: treat it as one that expired long ago.
        record = LeaseRecord(
            "unknown", 0, "unknown", "", "", _stamp(datetime.datetime.min.replace(tzinfo=datetime.timezone.utc))
        )
    return record, answer["ETag"]


def live_lease(s3, bucket: str, environment: str) -> LeaseRecord | None:
    """The environment's lease when a live run holds it (not expired)."""
    record, _ = read_lease(s3, bucket, environment)
    return record if record is not None and not record.expired(_now()) else None


class Lease:
    """The environment's lease for one run: `acquire` (waiting at most `wait` seconds for another run),
    renewed in a thread every third of `ttl`, `release` at the end. Use it as a context manager."""

    def __init__(self, s3, bucket: str, environment: str, operation: str, ttl: int, wait: float, log: Log = print):
        self.s3, self.bucket, self.environment, self.log = s3, bucket, environment, log
        self.ttl, self.wait = ttl, wait
        self.key = f"{environment}/{LEASE}"
        now = _now()
        self.record = LeaseRecord(
            holder=_who(),
            pid=os.getpid(),
            operation=operation,
            token=secrets.token_hex(16),
            acquired=_stamp(now),
            expires=_stamp(now),
        )
        self.etag: str | None = None
        self.lost: str = ""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._renewer: threading.Thread | None = None

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, *_) -> None:
        self.release()

    # -- writing the lease ------------------------------------------------------------------------

    def _put(self, condition: dict) -> None:
        """Write this run's record with `condition` (IfNoneMatch or IfMatch); ClientError on a conflict.
        The write is read back: a store that ignored the condition while another write landed first
        shows the other run's token, which counts as a conflict too."""
        self.record.expires = _stamp(_now() + datetime.timedelta(seconds=self.ttl))
        body = json.dumps(asdict(self.record), indent=2, sort_keys=True).encode()
        answer = self.s3.put_object(
            Bucket=self.bucket, Key=self.key, Body=body, ContentType="application/json", **condition
        )
        found, etag = read_lease(self.s3, self.bucket, self.environment)
        if found is None or found.token != self.record.token:
            raise ClientError(
                {"Error": {"Code": "PreconditionFailed", "Message": "another run's lease is there"}}, "PutObject"
            )
        self.etag = etag or answer.get("ETag")

    def acquire(self) -> None:
        """Take the lease: create it, or take over an expired one (reported); while another live run
        holds it, wait up to `wait` seconds, then LeaseHeld naming that run."""
        deadline = time.monotonic() + self.wait
        announced = False
        while True:
            self.record.acquired = _stamp(_now())
            try:
                self._put({"IfNoneMatch": "*"})
                break
            except ClientError as error:
                if not _conflict(error):
                    raise
            current, etag = read_lease(self.s3, self.bucket, self.environment)
            if current is None:
                continue  # released meanwhile: try again at once
            expired, dead = current.expired(_now()), dead_here(current)
            if expired or dead:
                try:
                    self._put({"IfMatch": etag})
                except ClientError as error:
                    if not _conflict(error):
                        raise
                    continue  # another run took it over first: look again
                why = "expired" if expired else "no longer running on this controller"
                self.log(f"{self.environment}: took over the backup lease of {current.describe()} (that run is {why})")
                _ABANDONED.discard(current.token)
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LeaseHeld(
                    f"{self.environment}: another run holds the backup lease: {current.describe()}; "
                    f"{self.record.operation} waited {self.wait:g}s and was refused, nothing was "
                    "changed"
                )
            if not announced:
                self.log(f"{self.environment}: waiting up to {self.wait:g}s for {current.describe()}")
                announced = True
            time.sleep(min(POLL_SECONDS, remaining))
        self._renewer = threading.Thread(target=self._renew_until_stopped, name=f"lease {self.key}", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        with self._lock:
            if self.lost or self.etag is None:
                return
            try:
                self._put({"IfMatch": self.etag})
            except ClientError as error:
                if _conflict(error):
                    current, _ = read_lease(self.s3, self.bucket, self.environment)
                    self.lost = current.describe() if current is not None else "nobody (the lease was removed)"
            except BotoCoreError:
                pass  # the store unreachable for a moment: the next renewal tries again, the expiry bounds it

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self._renew()
            except (ClientError, BotoCoreError):
                pass  # reading the lease after a conflict failed: the next renewal tries again

    def note(self, set_id: str) -> None:
        """Name the set this run writes or reads in the lease (retention and waiting runs see it)."""
        self.record.set_id = set_id
        self._renew()
        self.check()

    def check(self) -> None:
        """LeaseLost when another run took the lease over: this run must stop changing things."""
        if self.lost:
            raise LeaseLost(
                f"{self.environment}: this {self.record.operation} run lost its backup lease to "
                f"{self.lost} (it was not renewed in time); it stopped there"
            )

    def release(self) -> None:
        """Stop renewing and remove the lease when it is still this run's."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        with self._lock:
            try:
                current, _ = read_lease(self.s3, self.bucket, self.environment)
                if current is not None and current.token == self.record.token:
                    self.s3.delete_object(Bucket=self.bucket, Key=self.key)
            except (ClientError, BotoCoreError) as error:
                # Raising here would hide why the run ended; the lease expires by itself, and a later run
                # of this process takes it over at once.
                _ABANDONED.add(self.record.token)
                self.log(
                    f"{self.environment}: the backup lease could not be removed ({error}); it expires at "
                    f"{self.record.expires}"
                )

    # -- restore-in-progress markers --------------------------------------------------------------

    def marker(self) -> bytes:
        """The body of a restore-in-progress marker this run writes: it lives while this lease does."""
        return json.dumps(
            {
                "lease": self.key,
                "token": self.record.token,
                "holder": self.record.holder,
                "operation": self.record.operation,
                "since": _stamp(_now()),
            }
        ).encode()


def marker_is_live(s3, bucket: str, body: bytes) -> bool:
    """Whether a restore-in-progress marker's run still holds its lease (a marker without one is stale)."""
    try:
        data = json.loads(body.decode())
        key, token = data["lease"], data["token"]
    except (ValueError, TypeError, KeyError):
        return False
    environment = key.removesuffix(f"/{LEASE}")
    record, _ = read_lease(s3, bucket, environment)
    return record is not None and record.token == token and not record.expired(_now())


def clear_stale_markers(s3, bucket: str, environment: str, log: Log = print) -> list[str]:
    """Remove the restore-in-progress markers of the environment's sets that no live lease holds (left
    by a restore or drill that was killed) and report each; the ids of the sets they marked."""
    cleared = []
    for set_id, entry in sorted(list_sets(s3, bucket, environment).items()):
        if not entry["in_use"]:
            continue
        key = prefix(environment, set_id) + IN_USE
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        if marker_is_live(s3, bucket, body):
            continue
        s3.delete_object(Bucket=bucket, Key=key)
        cleared.append(set_id)
        try:
            left_by = json.loads(body.decode())
            what = f" left by {left_by['holder']}'s {left_by['operation']} of {left_by['since']}"
        except (ValueError, TypeError, KeyError):
            what = ""
        log(
            f"{environment}: cleared a stale restore-in-progress marker on set {set_id}{what} (no live lease "
            "holds it: that run was stopped before it finished)"
        )
    return cleared
