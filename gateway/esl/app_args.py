"""What may be given to FreeSWITCH as a dialplan application's argument.

FreeSWITCH expands an application's argument just before the application runs
(``switch_core_session_exec`` calls ``switch_channel_expand_variables_check``, 1.10.12
``src/switch_channel.c``), whoever sent it: ``sendmsg`` execute, ``uuid_broadcast``, the
dialplan. What that expansion does:

* ``${name}`` and ``$${name}`` become the variable's value: the channel's, else the caller
  profile's, else the *global* one (``switch_channel_get_variable_dup``). ``$${esl_password}``
  or ``${esl_password}`` reads the Event Socket password out of ``vars.xml``. The value is
  expanded again, so a value holding ``${…}`` expands too.
* ``${name args}`` / ``${name(args)}`` runs an API command; with ``api-expansion=false`` (the
  shipped ``switch.conf.xml``) it becomes ``<API Execute Permission Denied>``, with it on it
  runs (``${system(…)}``).
* ``\\$`` is a literal dollar, ``\\\\`` a backslash, and ``\\'`` vanishes whole.
* A ``$`` not followed by ``{`` (after optional ``$``) stays as it is; nothing else is touched.

After expansion, an argument starting with ``%[`` or ``%<c>[`` sets scoped channel variables
(``switch_core_session_exec``), and each application splits what is left its own way:
``speak`` on ``|`` (engine, voice, then the text unsplit) and a text starting with ``{…}``
sets TTS parameters (``switch_core_speech_feed_tts``); ``playback`` takes a leading ``{…}``
as file parameters and ``file_string://`` splits on ``!``; ``record_session`` and
``play_and_get_digits`` split on spaces.

So: client text is made harmless where it is put into an argument (:func:`speech_text`), a
path the gateway built is checked (:func:`file_path`), and every argument is checked once
more where it is sent (:func:`check`, in ``CallController.execute``).
"""
from __future__ import annotations

import re

#: Characters removed from client text spoken by ``speak``: expansion (``$ { }``), its
#: escapes (``\\``), speak's separator (``|``) and control characters.
_SPEECH_UNSAFE = re.compile(r"[${}\\|\x00-\x1f\x7f]")
#: A path the gateway built: absolute, no spaces, nothing FreeSWITCH reads as syntax.
_SAFE_PATH = re.compile(r"/[A-Za-z0-9_./+-]*", re.ASCII)
#: ``${`` or ``$${`` (with backslashes between, as switch_string_var_check_const allows).
_EXPANDS = re.compile(r"\$\\*\{")
_SCOPE_PREFIX = re.compile(r"%.?\[", re.DOTALL)
#: The escapes expansion rewrites; any other backslash (a regex's ``\d``) passes unchanged.
_ESCAPE = re.compile(r"\\[$'\\]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UnsafeArgument(ValueError):
    """An argument FreeSWITCH would expand or split into more than was meant."""


def speech_text(text: str) -> str:
    """Client text for ``speak``: what FreeSWITCH would expand or split on becomes a space,
    runs of white space one space. A TTS engine reads the rest as the client wrote it."""
    return " ".join(_SPEECH_UNSAFE.sub(" ", str(text)).split())


def file_path(path: str) -> str:
    """A file path the gateway built (a clip, a recording, a readout): returned unchanged
    if it is absolute and made of letters, digits and ``/ . _ - +`` only, with no ``..``
    segment; else :class:`UnsafeArgument` (the media directory is configured with a path
    FreeSWITCH cannot be given as one argument)."""
    text = str(path)
    if not _SAFE_PATH.fullmatch(text) or "/../" in f"{text}/":
        raise UnsafeArgument(f"not a file path FreeSWITCH can be given safely: {text!r}")
    return text


def check(arg: str) -> str:
    """The last check before an argument is sent: :class:`UnsafeArgument` if FreeSWITCH
    would expand anything in it, unescape something in it (``\\$ \\' \\\\``), take a
    scope-variable prefix from it, or see a line break (the argument travels in an ESL
    header)."""
    text = str(arg)
    if _EXPANDS.search(text):
        raise UnsafeArgument("application argument holds a variable reference (${…})")
    if _ESCAPE.search(text):
        raise UnsafeArgument("application argument holds a backslash escape")
    if _CONTROL.search(text):
        raise UnsafeArgument("application argument holds a control character")
    if _SCOPE_PREFIX.match(text):
        raise UnsafeArgument("application argument starts with a scope-variable block (%[…])")
    return text
