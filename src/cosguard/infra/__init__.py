"""Infrastructure the domain stands on: the COS/CI gateway, retries, Settings, JSON logs, webhooks."""
