"""``/knowledge`` and ``/agents/:id/knowledge``: text and URL documents (HTML, PDF, plain
text fetched from a server on 127.0.0.1 under the outbound-URL policy, with their limits),
attach and detach, what reaches the conversation; scopes, isolation, bad input."""
from __future__ import annotations

import io

import pytest
from gevent.pywsgi import WSGIServer
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

from voice_admin_support import *  # noqa: F401,F403 -- fixtures
from voice_admin_support import PREFIX, new_agent
from webhook_support import wait_until
from gateway import net_policy
from gateway.models import Agent, KnowledgeDocument
from gateway.voice_agents import conversation_initiation, documents

HTML = (b"<html><head><style>p{}</style><script>var secret=1</script></head>"
        b"<body><h1>Rates</h1><p>Home loans at 8.5%.</p></body></html>")


def pdf_with(text: str) -> bytes:
    """A one-page PDF whose page shows ``text`` (Helvetica, one line)."""
    writer = PdfWriter()
    page = writer.add_blank_page(300, 200)
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica")})
    page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject(
        {NameObject("/F1"): writer._add_object(font)})})
    stream = DecodedStreamObject()
    stream.set_data(f"BT /F1 12 Tf 20 100 Td ({text}) Tj ET".encode())
    page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


class DocumentServer:
    """A web server on 127.0.0.1 answering each request with the next scripted
    ``(status, content type, body, extra headers)``."""

    def __init__(self):
        self.answers = []
        self.paths = []
        self.server = WSGIServer(("127.0.0.1", 0), self.app, log=None, error_log=None)
        self.server.start()

    def url(self, path="/doc"):
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def script(self, status, content_type, body, **headers):
        self.answers.append((status, content_type, body, headers))

    def app(self, environ, start_response):
        self.paths.append(environ["PATH_INFO"])
        status, content_type, body, headers = self.answers.pop(0)
        start_response(f"{status} X", [("Content-Type", content_type), ("Content-Length", str(len(body))),
                                       *headers.items()])
        return [body]


@pytest.fixture
def web():
    server = DocumentServer()
    yield server
    server.server.stop(timeout=0.2)


def wait_done(doc_id):
    def status():
        document = KnowledgeDocument.get_by_id(int(doc_id))
        return document if document.status != "processing" else None
    return wait_until(status, timeout=10, what="the document's fetch")


def test_text_document_attach_and_conversation(client, keys):
    agent_id = new_agent(client, keys.one, prompt="Be brief.")["id"]
    created = client.post(f"{PREFIX}/knowledge/text", json={"name": "FAQ", "text": "Open 9-5.\nClosed Sundays."},
                          headers=keys.one)
    assert created.status_code == 201, created.json
    doc = created.json
    assert (doc["status"], doc["kind"], doc["characters"], doc["failure_reason"]) == ("ready", "text", 25, None)
    patched = client.patch(f"{PREFIX}/agents/{agent_id}/knowledge", json={"attach": [doc["id"], doc["id"]]},
                           headers=keys.one)
    assert patched.json == {"knowledge": [doc["id"]]}
    assert client.get(f"{PREFIX}/agents/{agent_id}", headers=keys.one).json["knowledge"] == [doc["id"]]
    prompt = conversation_initiation(Agent.get_by_id(int(agent_id)), {})["conversation_config_override"][
        "agent"]["prompt"]["prompt"]
    assert prompt.startswith("Be brief.") and "## FAQ\nOpen 9-5.\nClosed Sundays." in prompt
    assert client.patch(f"{PREFIX}/agents/{agent_id}/knowledge", json={"detach": [doc["id"]]},
                        headers=keys.one).json == {"knowledge": []}
    listed = client.get(f"{PREFIX}/knowledge", headers=keys.one).json
    assert (listed["total"], [d["id"] for d in listed["documents"]]) == (1, [doc["id"]])
    client.patch(f"{PREFIX}/agents/{agent_id}/knowledge", json={"attach": [doc["id"]]}, headers=keys.one)
    assert client.delete(f"{PREFIX}/knowledge/{doc['id']}", headers=keys.one).json == {"deleted": True}
    assert client.get(f"{PREFIX}/agents/{agent_id}", headers=keys.one).json["knowledge"] == []
    assert client.delete(f"{PREFIX}/knowledge/{doc['id']}", headers=keys.one).status_code == 404


@pytest.mark.usefixtures("loopback_allowed")
@pytest.mark.parametrize("body, content_type, words", [
    (HTML, "text/html; charset=utf-8", "Rates\nHome loans at 8.5%."),
    (b"plain words", "text/plain", "plain words"),
    (None, "application/pdf", "Loans from the PDF"),
])
def test_url_documents_are_fetched_and_reduced_to_text(client, keys, web, body, content_type, words):
    web.script(200, content_type, body if body is not None else pdf_with("Loans from the PDF"))
    created = client.post(f"{PREFIX}/knowledge/url", json={"url": web.url()}, headers=keys.one)
    assert created.status_code == 202 and created.json["status"] == "processing", created.json
    document = wait_done(created.json["id"])
    assert document.status == "ready", document.failure_reason
    assert words in document.text and "secret" not in document.text
    read = client.get(f"{PREFIX}/knowledge", headers=keys.one).json["documents"][0]
    assert (read["status"], read["content_type"]) == ("ready", content_type.split(";")[0])


@pytest.mark.usefixtures("loopback_allowed")
def test_url_documents_that_fail_say_why(client, keys, web, monkeypatch):
    monkeypatch.setattr(documents, "MAX_BYTES", 1000)
    cases = [((200, "text/plain", b"x" * 2000), "larger than 1000 bytes"),
             ((200, "image/png", b"\x89PNG"), "'image/png' is not handled"),
             ((200, "application/pdf", b"not a pdf"), "the PDF could not be read"),
             ((404, "text/html", b"gone"), "the server answered 404"),
             ((200, "text/html", b"<html><script>x</script></html>"), "the document has no text")]
    for answer, reason in cases:
        web.script(*answer)
        doc_id = client.post(f"{PREFIX}/knowledge/url", json={"url": web.url(), "name": "D"},
                             headers=keys.one).json["id"]
        document = wait_done(doc_id)
        assert (document.status, reason in (document.failure_reason or "")) == ("failed", True), \
            document.failure_reason


def test_redirects_are_followed_and_checked(client, keys, web):
    with net_policy.policy.allowing("127.0.0.1"):
        web.script(302, "text/html", b"", Location="/moved")
        web.script(200, "text/plain", b"moved text")
        doc_id = client.post(f"{PREFIX}/knowledge/url", json={"url": web.url()}, headers=keys.one).json["id"]
        assert wait_done(doc_id).text == "moved text"
        web.script(302, "text/html", b"", Location="http://10.0.0.1/internal")
        doc_id = client.post(f"{PREFIX}/knowledge/url", json={"url": web.url()}, headers=keys.one).json["id"]
        document = wait_done(doc_id)
        assert document.status == "failed" and "refused" in document.failure_reason
    assert web.paths == ["/doc", "/moved", "/doc"]
    # Without the allowlist the loopback server itself is refused when the URL is given.
    response = client.post(f"{PREFIX}/knowledge/url", json={"url": web.url()}, headers=keys.one)
    assert response.status_code == 400 and "refused" in response.json["error"]


@pytest.mark.parametrize("body", [
    {"url": "http://10.1.2.3/doc"}, {"url": "http://169.254.169.254/latest/meta-data"},
    {"url": "http://127.0.0.1/doc"}, {"url": "ftp://example.com/x"}, {"url": 5}, {"url": "https://x.example", "y": 1},
])
def test_bad_url_documents(client, keys, body):
    response = client.post(f"{PREFIX}/knowledge/url", json=body, headers=keys.one)
    assert response.status_code == 400 and list(response.json) == ["error"], response.json
    assert not KnowledgeDocument.select().exists()


def test_bad_text_documents_and_links(client, keys):
    for body in ({}, {"name": "x"}, {"name": "x", "text": ""}, {"name": "x", "text": 3},
                 {"name": "x", "text": "t", "extra": True}):
        assert client.post(f"{PREFIX}/knowledge/text", json=body, headers=keys.one).status_code == 400, body
    agent_id = new_agent(client, keys.one)["id"]
    for body in ({"attach": "1"}, {"attach": [1]}, {"attach": ["x"]}, {"other": []}):
        response = client.patch(f"{PREFIX}/agents/{agent_id}/knowledge", json=body, headers=keys.one)
        assert response.status_code == 400, body
    assert client.patch(f"{PREFIX}/agents/{agent_id}/knowledge", json={"attach": ["999"]},
                        headers=keys.one).json == {"error": "Document 999 not found"}


def test_knowledge_scopes_and_isolation(client, keys):
    theirs = client.post(f"{PREFIX}/knowledge/text", json={"name": "Two's", "text": "t"}, headers=keys.two).json
    mine_agent = new_agent(client, keys.one)["id"]
    their_agent = new_agent(client, keys.two)["id"]
    assert client.get(f"{PREFIX}/knowledge", headers=keys.one).json["total"] == 0
    assert client.get(f"{PREFIX}/knowledge", headers=keys.b).json["total"] == 0
    assert client.get(f"{PREFIX}/knowledge", headers=keys.all).json["documents"][0]["id"] == theirs["id"]
    for auth in (keys.one, keys.b):
        assert client.delete(f"{PREFIX}/knowledge/{theirs['id']}", headers=auth).status_code == 404
        assert client.patch(f"{PREFIX}/agents/{their_agent}/knowledge", json={"attach": []},
                            headers=auth).status_code == 404
    # Another owner's document cannot be attached to one's own agent.
    assert client.patch(f"{PREFIX}/agents/{mine_agent}/knowledge", json={"attach": [theirs["id"]]},
                        headers=keys.one).status_code == 404
    for auth in (keys.all, keys.read):
        assert client.post(f"{PREFIX}/knowledge/text", json={"name": "x", "text": "t"}, headers=auth).status_code == 403
        assert client.post(f"{PREFIX}/knowledge/url", json={"url": "https://example.com"},
                           headers=auth).status_code == 403
        assert client.delete(f"{PREFIX}/knowledge/{theirs['id']}", headers=auth).status_code == 403
        assert client.patch(f"{PREFIX}/agents/{their_agent}/knowledge", json={"attach": []},
                            headers=auth).status_code == 403
    assert client.get(f"{PREFIX}/knowledge", headers=keys.none).status_code == 403
    assert KnowledgeDocument.select().count() == 1


def test_ids_beyond_32_bits_are_misses(client, keys):
    """PostgreSQL's ids are 32-bit: a larger number is a miss, not a database error."""
    agent_id = new_agent(client, keys.one)["id"]
    big = str(2**31)
    assert client.delete(f"{PREFIX}/knowledge/{big}", headers=keys.one).status_code == 404
    assert client.delete(f"{PREFIX}/knowledge/text", headers=keys.one).status_code == 405
    assert client.patch(f"{PREFIX}/agents/{agent_id}/knowledge", json={"detach": [big, "9" * 18]},
                        headers=keys.one).json == {"knowledge": []}
    assert client.patch(f"{PREFIX}/agents/{agent_id}/knowledge", json={"attach": [big]},
                        headers=keys.one).status_code == 404
    assert client.get(f"{PREFIX}/agents/{big}", headers=keys.one).status_code == 404
