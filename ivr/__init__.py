"""ivr: an offline Mandarin voice customer-service bot for e-commerce hotlines."""

__version__ = "0.1.0"
