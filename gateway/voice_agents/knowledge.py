"""The knowledge base's reach into a conversation: the text of an agent's ready
documents, appended to its prompt, bounded (ElevenLabs' prompt override is one text; a
larger knowledge base would need ElevenLabs' own RAG, which the overrides cannot set)."""
from __future__ import annotations

from gateway.models import AgentKnowledge, KnowledgeDocument

#: Characters of knowledge-base text a conversation's prompt carries, in all.
MAX_PROMPT_KNOWLEDGE = 30_000
HEADING = "Knowledge base (answer from it when it applies):"


def knowledge_text(agent) -> str:
    """The agent's ready documents, oldest attachment first, each under its name, cut to
    ``MAX_PROMPT_KNOWLEDGE`` characters in all; "" when it has none."""
    documents = (KnowledgeDocument.select()
                 .join(AgentKnowledge, on=(AgentKnowledge.document == KnowledgeDocument.id))
                 .where((AgentKnowledge.agent == agent.id) & (KnowledgeDocument.status == "ready"))
                 .order_by(KnowledgeDocument.id))
    parts, room = [], MAX_PROMPT_KNOWLEDGE
    for document in documents:
        if room <= 0:
            break
        part = f"## {document.name}\n{document.text.strip()}"[:room]
        parts.append(part)
        room -= len(part) + 2
    return "\n\n".join(parts)


def with_knowledge(prompt: str | None, agent) -> str | None:
    """``prompt`` followed by the agent's knowledge text (None when both are empty)."""
    knowledge = knowledge_text(agent)
    if not knowledge:
        return prompt
    return f"{prompt or ''}\n\n{HEADING}\n\n{knowledge}".lstrip()
