"""The Optuna study an experiment keeps its trials in: the storage, the study's identity, heartbeats.

Storage (``--storage``):

- default: a journal file ``DIR/study.journal`` (Optuna's ``JournalStorage``
  with a file backend and its symlink lock), which works on one machine and on
  a shared file system;
- a path without ``://``: a journal file there;
- a database URL Optuna accepts (``sqlite:///grid.db``,
  ``postgresql+psycopg://user@host/db``, ``mysql+pymysql://...``): Optuna's
  ``RDBStorage``.

Heartbeats: a worker records one every ``interval`` seconds while a trial runs;
a running trial without one for ``grace = GRACE_FACTOR * interval`` seconds is
stale: the next worker that looks fails it and queues a copy
(``RetryHeartbeatStaleTrialCallback``), which any worker then takes over. The
database storage has this built in; for the journal file
:func:`journal_storage` adds it (the heartbeat is a trial system
attribute, compared with the wall clock of the worker that looks, so the
machines sharing a journal need clocks within a few seconds of each other).

Identity: the study records what it is (command, searched values, seeds,
shared settings, data fingerprints) as a user attribute when it is created; a
command that opens it with anything else gets an :class:`ExperimentError`
instead of mixing two experiments in one study.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from .errors import ExperimentError

JOURNAL_FILE = "study.journal"
IDENTITY_ATTR = "snn_msa_experiment"
HEARTBEAT_ATTR = "snn_msa_heartbeat"
DEFAULT_HEARTBEAT = 60
GRACE_FACTOR = 3
MAX_RETRY = 3  # takeovers of one killed trial within a session; a rerun of the command queues it again

_quiet_done = False


def quiet_optuna() -> None:
    """Optuna logs a line per trial; the experiments print their own progress."""
    global _quiet_done
    if not _quiet_done:
        import warnings

        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        logging.getLogger("optuna").setLevel(logging.WARNING)
        # Heartbeats, fail_stale_trials and the retry callback are marked experimental; ask/tell with a
        # heartbeat storage warns that heartbeats are meant for study.optimize: the workers use them by hand.
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        warnings.filterwarnings("ignore", message="`GridSampler` is re-evaluating a configuration")
        _quiet_done = True


def describe_storage(storage: str | None, out: str | os.PathLike) -> str:
    """The storage as a user would write it: the URL, or the journal file's path (default ``DIR/study.journal``)."""
    if storage and "://" in storage:
        return storage
    return str(Path(storage).expanduser() if storage else Path(out).expanduser() / JOURNAL_FILE)


def open_storage(storage: str | None, out: str | os.PathLike, heartbeat: int = DEFAULT_HEARTBEAT):
    """The Optuna storage named by ``storage`` (see the module docstring), with heartbeats every ``heartbeat`` s.

    Raises:
        ExperimentError: the URL's database cannot be reached or its driver is missing,
            or the journal file's folder cannot be written.
    """
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    if isinstance(heartbeat, bool) or not isinstance(heartbeat, int) or heartbeat < 1:
        raise ExperimentError(f"the heartbeat interval must be a whole number of seconds >= 1, got {heartbeat!r}.")
    quiet_optuna()
    retry = RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
    where = describe_storage(storage, out)
    if "://" in where:
        for attempt in range(3):
            try:
                return RDBStorage(where, heartbeat_interval=heartbeat, grace_period=GRACE_FACTOR * heartbeat,
                                  heartbeat_stale_trial_callback=retry,
                                  engine_kwargs={"pool_pre_ping": True} if not where.startswith("sqlite") else None)
            except ImportError as error:
                raise ExperimentError(f"--storage {_safe_url(where)}: its database driver is not installed ({error}); "
                                      "for PostgreSQL: pip install 'snn-msa[postgresql]'.") from None
            except Exception as error:  # SQLAlchemy's errors (bad URL, refused connection, no such database)
                if attempt < 2 and _creating_tables_at_once(error):
                    time.sleep(1.0 + attempt)
                    continue
                first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise ExperimentError(f"--storage {_safe_url(where)} cannot be used: {first[:300]}. Check the URL and "
                                      "that the database server is running and reachable from this machine.") from None
    path = Path(where)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return journal_storage(str(path), heartbeat, GRACE_FACTOR * heartbeat, retry)
    except OSError as error:
        raise ExperimentError(f"cannot write the study journal {path}: {error.strerror or error}; "
                              "give a writable --out or --storage.") from None


def _creating_tables_at_once(error: Exception) -> bool:
    """Two workers that open a new database at once both create Optuna's tables; one of them loses the race."""
    return type(error).__name__ in ("IntegrityError", "ProgrammingError", "UniqueViolation", "DuplicateTable")


def _safe_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (error messages end up in logs)."""
    head, sep, tail = url.partition("://")
    if not sep or "@" not in tail:
        return url
    credentials, at, rest = tail.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{head}://{user}{':***' if ':' in credentials else ''}@{rest}"


@functools.cache
def _journal_storage_class():
    from optuna.storages import JournalStorage
    from optuna.storages._heartbeat import BaseHeartbeat
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState

    class _HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
        """Optuna's journal-file storage with the heartbeat that its database storage has built in.

        A running trial's last sign of life is the later of its start and its
        last heartbeat (a system attribute holding ``time.time()``); a trial is
        stale when that is more than ``grace`` seconds ago.
        """

        def __init__(self, path: str, interval: int, grace: int, callback: Callable) -> None:
            super().__init__(JournalFileBackend(path))
            self._interval, self._grace, self._callback = interval, grace, callback

        def record_heartbeat(self, trial_id: int) -> None:
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())

        def _get_stale_trial_ids(self, study_id: int) -> list[int]:
            now = time.time()
            stale = []
            for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
                started = trial.datetime_start.timestamp() if trial.datetime_start else now
                last = max(started, float(trial.system_attrs.get(HEARTBEAT_ATTR, 0.0)))
                if now - last > self._grace:
                    stale.append(trial._trial_id)
            return stale

        def get_heartbeat_interval(self) -> int | None:
            return self._interval

        def get_heartbeat_stale_trial_callback(self) -> Callable | None:
            return self._callback

    return _HeartbeatJournalStorage


def journal_storage(path: str, interval: int, grace: int, callback: Callable):
    """A journal-file storage (``path``) with heartbeats every ``interval`` s and stale trials after ``grace`` s.

    Built on first use so that importing :mod:`snn_msa.experiments` does not import Optuna.
    """
    return _journal_storage_class()(path, interval, grace, callback)


def open_study(storage, name: str, identity: Mapping[str, Any], sampler, where: str):
    """Create the study ``name`` in ``storage``, or load it and check it is the same experiment.

    Args:
        storage: from :func:`open_storage`.
        name: the study's name (default in the commands: the output folder's name).
        identity: what this experiment is, JSON-ready; stored on creation, compared on load.
        sampler: the Optuna sampler of this worker.
        where: the storage as the user wrote it, for messages.

    Raises:
        ExperimentError: the study holds another experiment (the difference is named).
    """
    import optuna

    wanted = json.loads(json.dumps(identity))  # JSON types, as the storage gives them back; key order kept for messages
    try:
        study = optuna.create_study(storage=storage, study_name=name, sampler=sampler, direction="minimize",
                                    load_if_exists=True)
    except Exception as error:  # a database that went away between open_storage and here
        raise ExperimentError(f"cannot open study {name!r} in {where}: {str(error).splitlines()[0][:300]}") from None
    stored = study.user_attrs.get(IDENTITY_ATTR)
    if stored is None:
        study.set_user_attr(IDENTITY_ATTR, wanted)
        # Two workers may create the study at once: the last identity written is the study's.
        stored = optuna.load_study(study_name=name, storage=storage, sampler=sampler).user_attrs.get(IDENTITY_ATTR)
    if stored != wanted:
        raise ExperimentError(f"study {name!r} in {where} holds another experiment ({identity_difference(stored, wanted)}); "
                              "give another --out (or --study), or the same command and options that made it.")
    return study


def identity_difference(stored: Any, wanted: Mapping[str, Any]) -> str:
    """The first field that differs, in words: ``grid values: study 0.5,1 x 0 ..., this command ...``."""
    if not isinstance(stored, dict):
        return "made by another program"
    for key in wanted:
        if stored.get(key) != wanted[key]:
            return f"{key}: the study has {_short(stored.get(key))}, this command asks for {_short(wanted[key])}"
    extra = sorted(set(stored) - set(wanted))
    return f"the study records {', '.join(extra)} as well" if extra else "it differs"


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 160 else text[:157] + "..."


class Heartbeat:
    """Records a trial's heartbeat every ``interval`` seconds in a thread while the block runs.

    >>> # with Heartbeat(storage, trial_id): train(...)
    """

    def __init__(self, storage, trial_id: int) -> None:
        self._storage, self._trial_id = storage, trial_id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Heartbeat":
        interval = self._storage.get_heartbeat_interval()
        if interval:
            self._storage.record_heartbeat(self._trial_id)
            self._thread = threading.Thread(target=self._beat, args=(interval,), daemon=True)
            self._thread.start()
        return self

    def _beat(self, interval: int) -> None:
        while not self._stop.wait(interval):
            try:
                self._storage.record_heartbeat(self._trial_id)
            except Exception:  # the trial was finished or failed as stale meanwhile
                return

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
