"""Webhooks: signing, the routing webhook, the durable outbox and its dispatcher, and
the providers' completion reports (their HTTP endpoint is ``gateway.api.agents.ingest``).

=================  =======================================================================
module             what
=================  =======================================================================
``signing``        canonical JSON, ``X-Signature: sha256=…``, ``X-Webhook-Signature: t=…,v1=…``
``urls``           webhook URLs and HTTP sessions to checked addresses (``gateway.net_policy``)
``events``         pure builders of each surface's event bodies and headers
``subscriptions``  which events an account receives, and where
``outbox``         ``outbox_hook`` (controller transaction hook), enqueue, replay
``dispatcher``     ``Dispatcher``: claims, delivers, retries, records attempts
``routing``        ``request_route``: the 3 s routing webhook
``provider``       provider call ids, completion reports: their signature, checks, saving
``cli``            ``voicegw webhooks …``
=================  =======================================================================

Importing this package imports none of them. None imports the API (or Flask).
"""
