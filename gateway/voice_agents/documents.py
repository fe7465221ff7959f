"""A URL knowledge document, fetched by the gateway and reduced to text.

The fetch goes through the outbound-URL policy (``gateway.webhooks.urls``: no private
addresses, checked at connect time; redirects followed by hand, each hop checked the
same way, at most ``MAX_REDIRECTS``), within ``TIMEOUT`` seconds in all, reading at most
``MAX_BYTES``. HTML is reduced to its visible text (BeautifulSoup, with Python's own
parser: no native dependency), PDF to the text of its pages (pypdf), plain text and
Markdown kept. The document ends ``ready`` with its text, or ``failed`` with the reason.
"""
from __future__ import annotations

import io
import logging
import time
from urllib.parse import urljoin

import requests
from bs4 import BeautifulSoup
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from gateway.models import KnowledgeDocument, utcnow
from gateway.models.db import connection_scope
from gateway.voice_agents.bounded_body import read_bounded
from gateway.webhooks.urls import UrlRefused, check_url, guarded_session

logger = logging.getLogger(__name__)

TIMEOUT = 20.0
MAX_BYTES = 5 * 1024 * 1024
MAX_TEXT = 200_000
MAX_REDIRECTS = 3
TEXT_TYPES = ("text/plain", "text/markdown", "text/csv")


class FetchFailed(Exception):
    """Why a document could not be read, in words for the person who added it."""


def fetch_document(document_id: int) -> None:
    """Fetch the document's URL and store its text (``ready``) or why not (``failed``).
    No database connection is held while the fetch runs."""
    with connection_scope():
        document = KnowledgeDocument.get_or_none(KnowledgeDocument.id == document_id)
    if document is None:
        return
    try:
        content_type, text = read_url(document.url)
    except FetchFailed as exc:
        _finish(document_id, status="failed", failure_reason=str(exc))
        return
    except Exception:
        logger.exception("knowledge document %s: reading %s failed", document_id, document.url)
        _finish(document_id, status="failed", failure_reason="the document could not be read")
        return
    if not text.strip():
        _finish(document_id, status="failed", failure_reason="the document has no text", content_type=content_type)
        return
    _finish(document_id, status="ready", text=text[:MAX_TEXT].replace("\x00", ""), content_type=content_type)


def _finish(document_id: int, **fields) -> None:
    with connection_scope():
        KnowledgeDocument.update(updated_at=utcnow(), **fields).where(KnowledgeDocument.id == document_id).execute()


def read_url(url: str) -> tuple[str, str]:
    """``(content type, text)`` of the document at ``url``; raise :class:`FetchFailed`."""
    deadline = time.monotonic() + TIMEOUT
    session = guarded_session(pool_maxsize=1)
    try:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                check_url(url, resolve_host=False)
                response = session.get(url, timeout=max(0.1, deadline - time.monotonic()), allow_redirects=False,
                                       stream=True, headers={"Accept": "text/html, text/plain, application/pdf"})
            except UrlRefused as exc:
                raise FetchFailed(str(exc)) from None
            except requests.RequestException as exc:
                raise FetchFailed(f"the URL could not be fetched ({type(exc).__name__})") from None
            with response:
                if response.is_redirect and response.headers.get("Location"):
                    url = urljoin(url, response.headers["Location"])
                    continue
                if response.status_code >= 400:
                    raise FetchFailed(f"the server answered {response.status_code}")
                body = read_bounded(
                    response, max_bytes=MAX_BYTES, deadline=deadline,
                    too_large=FetchFailed(f"the document is larger than {MAX_BYTES} bytes"),
                    too_slow=FetchFailed(f"the document took longer than {TIMEOUT:g} s to fetch"))
                content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                return content_type, to_text(content_type, body, response.encoding)
        raise FetchFailed(f"more than {MAX_REDIRECTS} redirects")
    finally:
        session.close()


def to_text(content_type: str, body: bytes, encoding: str | None = None) -> str:
    """The text of a document of ``content_type``; raise :class:`FetchFailed` for a type
    not handled."""
    if content_type in ("text/html", "application/xhtml+xml"):
        soup = BeautifulSoup(body, "html.parser")
        for hidden in soup(["script", "style", "noscript", "template"]):
            hidden.decompose()
        lines = (line.strip() for line in soup.get_text("\n").splitlines())
        return "\n".join(line for line in lines if line)
    if content_type == "application/pdf":
        try:
            reader = PdfReader(io.BytesIO(body))
            return "\n".join((page.extract_text() or "").strip() for page in reader.pages).strip()
        except (PyPdfError, ValueError, KeyError, TypeError) as exc:
            raise FetchFailed(f"the PDF could not be read ({type(exc).__name__})") from None
    if content_type in TEXT_TYPES:
        return body.decode(encoding or "utf-8", errors="replace")
    raise FetchFailed(f"content type {content_type or 'none'!r} is not handled (HTML, PDF or plain text)")
