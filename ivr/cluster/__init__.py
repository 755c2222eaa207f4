"""Several `ivr serve` nodes as one service: the local cluster launcher and the state the nodes share
(docs/deploy-cluster.md)."""
