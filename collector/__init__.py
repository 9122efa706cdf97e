"""The HTTP side of nudge: what applications, mail clients and people call.

The collector (``collector.app``, ``nudge serve``) takes Segment- and Customer.io-shaped events;
it never opens the warehouse: accepted messages go into the landing area's journal
(``nudge.core.landing.journal``) and become landing files the loader reads (docs/collector.md).
The subscription centre (``collector.subscription_centre``) serves the unsubscribe and
preference pages.
"""
