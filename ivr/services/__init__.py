"""Services: shop data (OMS), agents, call records. The lowest layer above audio/lang; imports nothing higher."""
