"""Webhooks: signing, the routing webhook, the durable outbox and its dispatcher, and
the providers' completion reports (their HTTP endpoint is ``gateway.api.agents.ingest``).

=================  =======================================================================
module             what
=================  =======================================================================
``signing``        canonical JSON, ``X-Signature: sha256=…``, ``X-Webhook-Signature: t=…,v1=…``
``urls``           webhook URLs and HTTP sessions to checked addresses (``gateway.net_policy``)
``events``         pure builders of each surface's event bodies
``profiles``       header profiles: the headers that carry an event and its signature
``subscriptions``  which events an account receives, where, and in which header profile
``outbox``         ``outbox_hook`` (controller transaction hook), enqueue, replay
``dispatcher``     ``Dispatcher``: claims, delivers, retries, records attempts
``routing``        ``request_route``: the 3 s routing webhook
``provider``       provider call ids (and WebSocket agents' call uuids), completion reports
``cli``            ``voicegw webhooks …``
=================  =======================================================================

Importing this package imports none of them. None imports the API (or Flask).
"""
