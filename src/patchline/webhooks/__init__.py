"""Signed webhooks: subscriptions, an outbox written with each change, a deliverer."""
