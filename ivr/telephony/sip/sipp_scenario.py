"""sipp caller scenarios (UAC: INVITE with a G.711 offer, ACK, optional RTP stream, pause, BYE) for load benches,
the local cluster's bench and tests. One builder so the SIP text is written once.

``proxied=True`` follows the Record-Route set of the 200 OK (calls through Kamailio): ACK and BYE go to
``[next_url]`` with ``[routes]``; else they go straight to the service. ``pause_ms=None`` holds for sipp's
``-d`` duration; ``rtp_stream`` names a raw G.711 file sipp plays into the call (``-mi``/``-mp`` media).
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

_CODECS = {"PCMU": 0, "PCMA": 8}

_IN_DIALOG = """      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq}
{routes}      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0"""


def caller_scenario(name: str, *, codec: str = "PCMA", proxied: bool = False, pause_ms: int | None = None,
                    rtp_stream: str | None = None, on_answer: str = "", on_end: str = "") -> str:
    """The sipp XML of one caller. ``on_answer``: actions (XML) run on the 200 OK, e.g. an ``<ereg>``;
    ``on_end``: actions run after the BYE's 200 (e.g. a ``<log>``)."""
    pt = _CODECS[codec]
    target = "[next_url]" if proxied else "sip:[service]@[remote_ip]:[remote_port]"
    routes = "      [routes]\n" if proxied else ""
    rrs = ' rrs="true"' if proxied else ""
    answer = (f'  <recv response="200" rtd="true"{rrs}>\n    <action>{on_answer}</action>\n  </recv>'
              if on_answer else f'  <recv response="200" rtd="true"{rrs}/>')
    media = (f'  <nop><action><exec rtp_stream={quoteattr(rtp_stream + ",1," + str(pt))}/></action></nop>\n'
             if rtp_stream else "")
    pause = f'  <pause milliseconds="{pause_ms}"/>' if pause_ms is not None else "  <pause/>"
    end = f"\n  <nop><action>{on_end}</action></nop>" if on_end else ""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name={quoteattr(name)}>
  <send retrans="500"><![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[local_ip_type] [local_ip]
      t=0 0
      m=audio [auto_media_port] RTP/AVP {pt} 101
      a=rtpmap:{pt} {codec}/8000
      a=rtpmap:101 telephone-event/8000
    ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
{answer}
  <send><![CDATA[
      ACK {target} SIP/2.0
{_IN_DIALOG.format(cseq="1 ACK", routes=routes)}
    ]]></send>
{media}{pause}
  <send retrans="500"><![CDATA[
      BYE {target} SIP/2.0
{_IN_DIALOG.format(cseq="2 BYE", routes=routes)}
    ]]></send>
  <recv response="200" crlf="true"/>{end}
</scenario>
"""
