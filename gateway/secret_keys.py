"""The keys that encrypt the secrets the gateway stores and must read back.

An account's webhook signing secrets (the HMAC keys its webhooks are signed with) and its
provider API keys (ElevenLabs, Vapi: sent to those services on its behalf) cannot be kept
as hashes, as API key secrets and OTP codes are. They are encrypted with Fernet
(``cryptography``: AES-128-CBC with HMAC-SHA256, so a changed value fails to decrypt
instead of reading back as something else) and stored as ``fernet:<key id>:<token>``,
where the key id, the first 8 hex digits of the SHA-256 of the key, names the key that
encrypted the value: a value whose key is missing is reported as such, and rotation
re-encrypts only what is not on the first key.

Where the keys come from:

* ``GATEWAY_SECRETS_KEY`` (``gateway.config``): comma-separated Fernet keys. The first
  encrypts, every one decrypts; a process applies them with :func:`configure`, and one
  that did not still reads them from its settings.
* Without it, a SQLite database's key file, beside it (``<database>.secrets-key``, mode
  0600), generated on first use with a log line naming it: a fresh install and ``voicegw
  demo`` need no configuration.
* Without it, a PostgreSQL database has no key: the gateway processes sharing it may run
  on several hosts, and a key made on one would be missing on the others. Whatever reads
  or writes a stored secret then fails with :class:`SecretKeyError`, and ``voicegw serve``
  refuses to start.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import logging
import os
import threading
from contextlib import contextmanager
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from peewee import DatabaseProxy, SqliteDatabase

logger = logging.getLogger(__name__)

KEY_VAR = "GATEWAY_SECRETS_KEY"
CONFIG_VAR = "GATEWAY_CONFIG"  # gateway.config's: the file may set the key too
KEY_FILE_SUFFIX = ".secrets-key"
PREFIX = "fernet:"
KEY_ID_LENGTH = 8
#: ``fernet:<key id>:``, the part of a stored value that says which key encrypted it.
HEAD_LENGTH = len(PREFIX) + KEY_ID_LENGTH + 1
_MAKE_ONE = "make one with `voicegw secrets generate-key`"


class SecretKeyError(ValueError):
    """No key, a key that is not there any more, or one that is not a key; the message
    says which, and what to do."""


def generate_key() -> str:
    """A new random key, as ``GATEWAY_SECRETS_KEY`` takes it."""
    return Fernet.generate_key().decode("ascii")


def stored_key_id(stored: str) -> str | None:
    """The id of the key that encrypted ``stored``; None if it is not an encrypted value."""
    if not stored.startswith(PREFIX) or stored[HEAD_LENGTH - 1:HEAD_LENGTH] != ":":
        return None
    return stored[len(PREFIX):HEAD_LENGTH - 1]


class SecretKeys:
    """One or more Fernet keys: the first encrypts, every one decrypts.

    ``source`` says where they came from (``GATEWAY_SECRETS_KEY``, a key file), for the
    messages. The keys themselves are never shown, only their ids.
    """

    def __init__(self, keys: list[str], source: str) -> None:
        self.source = source
        self._fernets: dict[str, Fernet] = {}
        for number, key in enumerate(keys, start=1):
            try:
                fernet = Fernet(key)
                raw = base64.urlsafe_b64decode(key)
            except ValueError:  # also binascii.Error and non-ASCII text
                raise SecretKeyError(
                    f"{source}: key {number} is not a Fernet key (32 bytes in url-safe base64,"
                    f" 44 characters); {_MAKE_ONE}") from None
            key_id = hashlib.sha256(raw).hexdigest()[:KEY_ID_LENGTH]
            if key_id in self._fernets:
                raise SecretKeyError(f"{source}: key {number} is listed twice")
            self._fernets[key_id] = fernet
        if not self._fernets:
            raise SecretKeyError(f"{source}: no key given; expected comma-separated Fernet keys ({_MAKE_ONE})")

    @classmethod
    def parse(cls, text: str, source: str) -> SecretKeys:
        """Keys from comma-separated text (blank items are skipped)."""
        return cls([item.strip() for item in text.split(",") if item.strip()], source)

    @classmethod
    def throwaway(cls, source: str) -> SecretKeys:
        """One new key, for a database thrown away with it (the demo's, a benchmark's)."""
        return cls([generate_key()], source)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._fernets)

    @property
    def first_id(self) -> str:
        return self.ids[0]

    def __repr__(self) -> str:
        return f"SecretKeys({self.source}: {', '.join(self.ids)})"

    def encrypt(self, plaintext: str) -> str:
        token = self._fernets[self.first_id].encrypt(plaintext.encode("utf-8")).decode("ascii")
        return f"{PREFIX}{self.first_id}:{token}"

    def decrypt(self, stored: str, what: str) -> str:
        """The plaintext of ``stored``; ``what`` names it in the error (``accounts.vapi_api_key``)."""
        key_id = stored_key_id(stored)
        if key_id is None:
            raise SecretKeyError(f"{what} is not encrypted (stored in clear?): run `voicegw migrate`")
        fernet = self._fernets.get(key_id)
        if fernet is None:
            raise SecretKeyError(
                f"{what} is encrypted with key {key_id}, which {self.source} does not hold"
                f" (it holds {', '.join(self.ids)}): give that key in {KEY_VAR}, after the first")
        try:
            return fernet.decrypt(stored[HEAD_LENGTH:].encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise SecretKeyError(f"{what} does not decrypt with key {key_id}: the stored value was altered") from None


#: The process's keys (``GATEWAY_SECRETS_KEY``); None: each database's fallback.
_configured: SecretKeys | None = None
_key_files: dict[Path, SecretKeys] = {}
_key_files_lock = threading.Lock()


def configure(keys: SecretKeys | None) -> None:
    """Make ``keys`` (the settings' ``secrets_keys``) the process's keys; None: no key
    configured, so each database's fallback applies."""
    global _configured
    _configured = keys


@contextmanager
def using(keys: SecretKeys | None):
    """The process's keys are ``keys`` for the duration of a ``with`` block: a command
    run in-process, a test."""
    saved = _configured
    configure(keys)
    try:
        yield keys
    finally:
        configure(saved)


def keys_for(db) -> SecretKeys:
    """The keys for the secrets stored in ``db`` (a database or the models' proxy)."""
    if isinstance(db, DatabaseProxy):
        db = db.obj
    if _configured is not None:
        return _configured
    from_settings = _settings_keys(os.environ.get(KEY_VAR), os.environ.get(CONFIG_VAR))
    if from_settings is not None:
        return from_settings
    if isinstance(db, SqliteDatabase):
        if db.database == ":memory:" or str(db.database).startswith("file::memory:"):
            raise SecretKeyError(f"{KEY_VAR} is not set, and an in-memory SQLite database has no key file")
        return _key_file_keys(Path(db.database))
    raise SecretKeyError(
        f"{KEY_VAR} is not set: the secrets stored in a PostgreSQL database need a key that every"
        f" gateway process using it holds; {_MAKE_ONE} and set it (README, \"Stored secrets\")")


@functools.lru_cache(maxsize=8)
def _settings_keys(key_text: str | None, config_file: str | None) -> SecretKeys | None:
    """``GATEWAY_SECRETS_KEY`` as the process's settings give it (environment or config
    file), for a process that never called :func:`configure` (a script on the models, a
    worker): it must use the same keys as ``serve``, never a SQLite key file of its own."""
    from gateway.config import Settings  # gateway.config imports this module

    return Settings.from_env().secrets_keys


def key_file_path(database: Path) -> Path:
    """Where the key of a SQLite database without ``GATEWAY_SECRETS_KEY`` is kept."""
    database = database.expanduser().absolute()
    return database.with_name(database.name + KEY_FILE_SUFFIX)


def _key_file_keys(database: Path) -> SecretKeys:
    path = key_file_path(database)
    with _key_files_lock:
        keys = _key_files.get(path)
        if keys is None:
            keys = _key_files[path] = _read_or_create(path)
        return keys


def _read_or_create(path: Path) -> SecretKeys:
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        text = _create(path)
    except (OSError, UnicodeError) as exc:
        raise SecretKeyError(f"key file {path}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    else:
        logger.info("stored secrets: %s not set, the key is in %s", KEY_VAR, path)
    return SecretKeys.parse(text, f"key file {path}")


def _create(path: Path) -> str:
    """Write a new key to ``path``, mode 0600, unless another process just did; return
    the file's key. The key is written to a temporary file that is then linked into
    place, so that nobody ever reads a half-written key file."""
    key = generate_key()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(key + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:  # another process made it first: its key is the one
            return path.read_text(encoding="ascii")
    except OSError as exc:
        raise SecretKeyError(f"key file {path}: cannot be created ({exc.strerror})") from None
    finally:
        temporary.unlink(missing_ok=True)
    logger.warning(
        "%s is not set: the webhook secrets and provider API keys stored in this database are"
        " encrypted with a key generated in %s (mode 0600). Back it up: without it they cannot"
        " be read. To use a key of your own, see README, \"Stored secrets\".", KEY_VAR, path)
    return key
