"""``/knowledge`` and ``/agents/:id/knowledge``: knowledge-base documents (text given, or
a URL the gateway fetches in the background: ``gateway.voice_agents.documents``) and
which agents they are attached to. An attached ready document's text reaches the
agent's conversations in its prompt (``gateway.voice_agents.knowledge``)."""
from __future__ import annotations

from flask.views import MethodView

from gateway.api.common import gateway
from gateway.api.errors import fail
from gateway.api.openapi import path_parameter
from gateway.api.surface import SurfaceBlueprint
from gateway.api.surfaces import VOICE_ADMIN
from gateway.api.voice_admin import ownership
from gateway.api.voice_admin.agents import writable_agent
from gateway.api.voice_admin.schemas import (
    AgentKnowledgeListSchema,
    AgentKnowledgeSchema,
    DeletedSchema,
    KnowledgeDocumentSchema,
    KnowledgeListSchema,
    KnowledgeTextSchema,
    KnowledgeUrlSchema,
    PageArgsSchema,
)
from gateway.models import AgentKnowledge, KnowledgeDocument
from gateway.models.validators import check_webhook_url
from gateway.voice_agents.documents import fetch_document

blp = SurfaceBlueprint(VOICE_ADMIN, "voice-knowledge", __name__,
                       description="Knowledge-base documents, and the agents they are attached to.")


def document_body(document: KnowledgeDocument) -> dict:
    return {"id": str(document.id), "name": document.name, "kind": document.kind, "url": document.url,
            "status": document.status, "failure_reason": document.failure_reason,
            "content_type": document.content_type, "characters": len(document.text or ""),
            "owner_agent_id": str(document.owner_agent_id) if document.owner_agent_id is not None else None,
            "created_at": document.created_at}


@blp.route("/knowledge")
class Knowledge(MethodView):
    @blp.requires("voice:read")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, KnowledgeListSchema)
    def get(self, args):
        """List the knowledge-base documents this key may read"""
        query = ownership.readable(KnowledgeDocument)
        total = query.count()
        page = query.order_by(KnowledgeDocument.id).limit(args["limit"]).offset(args["offset"])
        return {"documents": [document_body(document) for document in page], "total": total, **args}


@blp.route("/knowledge/text")
class KnowledgeText(MethodView):
    @blp.requires("voice:write", body=True)
    @blp.arguments(KnowledgeTextSchema)
    @blp.response(201, KnowledgeDocumentSchema)
    def post(self, body):
        """Add a text document (ready at once)"""
        document = KnowledgeDocument.create(account=ownership.account_id(), owner_agent=ownership.owner_of_new_rows(),
                                            name=body["name"].strip(), kind="text", status="ready",
                                            text=body["text"], content_type="text/plain")
        return document_body(document)


@blp.route("/knowledge/url")
class KnowledgeUrl(MethodView):
    @blp.requires("voice:write", body=True)
    @blp.arguments(KnowledgeUrlSchema)
    @blp.response(202, KnowledgeDocumentSchema)
    @blp.error(400, "Invalid body, or the URL's host is not a public address")
    def post(self, body):
        """Add a URL document: fetched in the background (processing, then ready or failed with a reason)"""
        try:
            url = check_webhook_url(body["url"], "URL")
        except ValueError as exc:
            fail(400, f"url: {exc}")
        document = KnowledgeDocument.create(account=ownership.account_id(), owner_agent=ownership.owner_of_new_rows(),
                                            name=(body.get("name") or url).strip()[:255], kind="url", url=url)
        gateway().knowledge.spawn(fetch_document, document.id)
        return document_body(document)


@blp.route("/knowledge/<int:doc_id>", parameters=[path_parameter("doc_id", "The document's id",
                                                              {"type": "string", "pattern": "^[0-9]{1,18}$"})])
class OneDocument(MethodView):
    @blp.requires("voice:write")
    @blp.response(200, DeletedSchema)
    @blp.error(404, "No such document, or not this key's")
    def delete(self, doc_id):
        """Delete a document (and detach it from every agent)"""
        document = ownership.one(ownership.writable(KnowledgeDocument), doc_id, "Document")
        document.delete_instance(recursive=True)
        return {"deleted": True}


@blp.route("/agents/<agent_id>/knowledge")
class AgentKnowledgeLinks(MethodView):
    @blp.requires("voice:write", body=True)
    @blp.arguments(AgentKnowledgeSchema)
    @blp.response(200, AgentKnowledgeListSchema)
    @blp.error(404, "No such agent or document, or not this key's")
    def patch(self, body, agent_id):
        """Attach documents to an agent and detach others"""
        agent = writable_agent(agent_id)
        attach = [ownership.one(ownership.writable(KnowledgeDocument), doc_id, f"Document {doc_id}")
                  for doc_id in dict.fromkeys(body["attach"])]
        detach = [int(doc_id) for doc_id in body["detach"] if int(doc_id) < 2**31]
        with KnowledgeDocument._meta.database.atomic():
            if detach:
                AgentKnowledge.delete().where((AgentKnowledge.agent == agent.id)
                                              & (AgentKnowledge.document.in_(detach))).execute()
            for document in attach:
                AgentKnowledge.insert(agent=agent.id, document=document.id).on_conflict_ignore().execute()
        return {"knowledge": [str(link.document_id) for link in AgentKnowledge.select().where(
            AgentKnowledge.agent == agent.id).order_by(AgentKnowledge.document)]}
