"""What cosguard decides and does about one object: scan submission, verdicts, actions, the ledger,
the rules, statuses and the trust tokens. Talks to the cloud only through `infra.cloud.CloudGateway`."""
