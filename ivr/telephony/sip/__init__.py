"""SIP gateway: answers calls from PBXs and trunks (G.711, RFC 4733 / SIP INFO DTMF, REFER transfer).

Signalling is aiosipua, media aiortp (see docs/decisions/0001-sip-stack.md and docs/sip.md).
"""

from ivr.telephony.sip import routeset  # noqa: F401  (Record-Route in responses, UAS route set order)
from ivr.telephony.sip.call import PORT_RATE, SipCall
from ivr.telephony.sip.gateway import SipGateway

__all__ = ["PORT_RATE", "SipCall", "SipGateway"]
