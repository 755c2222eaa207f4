"""Storage of the text channels: message ids of signed webhooks (replay protection)."""
