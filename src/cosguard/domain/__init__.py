"""What cosguard decides and does about one object: scan submission, verdicts, actions, the ledger,
the rules, statuses and the trust tokens. Talks to the cloud only through the `infra.gateway.Gateway`
protocol (CloudGateway over the SDK; MemoryGateway in tests)."""
