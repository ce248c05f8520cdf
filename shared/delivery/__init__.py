"""The delivery service: the conversation core, the ledger, pages, write-backs, held pages and queue messages."""
