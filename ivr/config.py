"""Settings in one place: defaults, then an optional TOML file, then ``IVR_*`` environment variables.

Precedence (later wins): built-in defaults < TOML file < environment < explicit overrides (CLI flags).
The TOML file is ``$IVR_CONFIG`` if set, else ``./ivr.toml`` if it exists. Keys are the field names below,
flat or grouped under any table (``[server] port = 8080`` and ``port = 8080`` are the same). Environment
variables are the upper-case field names with an ``IVR_`` prefix (``IVR_PORT=8080``).

Everything is validated once at start-up; a bad value stops the program with one clear line naming the
setting, where it came from, and what is allowed.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator


class ConfigError(Exception):
    """A setting is invalid; the message is meant for the operator, one line."""


def _default_data_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "ivr"


class Settings(BaseModel):
    """All runtime settings with their documented defaults."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # --- storage -------------------------------------------------------------------------------------
    data_dir: Path = Field(default_factory=_default_data_dir, description="Where the SQLite shop, records and recordings live.")
    db_url: str = Field("", description="SQLAlchemy URL; empty means sqlite:///<data_dir>/ivr.db.")
    models_dir: Path = Field(default_factory=lambda: _default_data_dir() / "models", description="Downloaded Vosk models.")

    # --- service -------------------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Bind address for HTTP and SIP.")
    port: int = Field(8080, ge=0, le=65535, description="HTTP port of `ivr serve`.")
    sip_port: int = Field(5060, ge=0, le=65535, description="SIP UDP/TCP port; 0 disables SIP.")
    sip_host: str = Field("", description="Bind address for SIP and its RTP when it differs from HTTP's (e.g. the PBX-facing interface); empty = host.")
    sip_allow_from: str = Field("", description="Comma-separated IPs/networks allowed to send INVITEs; empty = anyone.")
    sip_trusted_peers: str = Field("", description="Comma-separated IPs/networks of trunks/PBXs whose caller ID (and P-Asserted-Identity) is trusted; empty = no caller ID is trusted.")
    sip_rtp_nat_latch: bool = Field(True, description="RTP may latch to the first packet from the SDP's IP on another port, or from the address that sent the INVITE (phones behind NAT); False = only from the exact c=/m= address (trunks, SBCs).")
    sip_auth_user: str = Field("", description="Digest user required on inbound INVITEs; empty = no digest auth.")
    sip_auth_password: str = Field("", description="Digest password for sip_auth_user.")
    sip_register_uri: str = Field("", description="Register to a PBX/trunk as this AOR, e.g. sip:ivr@pbx.example:5060; empty = no REGISTER.")
    sip_register_password: str = Field("", description="Digest password for sip_register_uri.")
    sip_session_expires: int = Field(1800, ge=0, le=86400, description="RFC 4028 session interval offered/accepted; 0 = no session timers.")
    sip_retry_after_s: int = Field(30, ge=1, le=3600, description="Retry-After of the 503 sent when at capacity.")
    sip_ring_ms: int = Field(0, ge=0, le=60000, description="Ringing (180) before the bot answers.")
    public_ip: str = Field("", description="Address to advertise in SDP/ICE; empty = host (or auto).")
    ice_servers: list[dict[str, Any]] = Field(default_factory=list, description='STUN/TURN servers for the phone and agent pages and the bot\'s own WebRTC peer, as in RTCConfiguration: [{urls = "stun:turn.example:3478"}, {urls = "turn:turn.example:3478", username = "u", credential = "p"}] (TOML; JSON in IVR_ICE_SERVERS); a turn: entry without username gets time-limited credentials from turn_secret.')
    turn_secret: str = Field("", description="coturn's static-auth-secret (use-auth-secret): TURN REST credentials are made per page load; empty = static username/credential only.")
    turn_ttl_s: int = Field(86400, ge=60, le=7 * 86400, description="Lifetime of TURN REST credentials made from turn_secret.")
    ice_transport_policy: Literal["all", "relay"] = Field("all", description="'relay' = pages and the bot use TURN relay candidates only (no host/STUN candidates).")
    rtp_port_min: int = Field(0, ge=0, le=65535, description="Lowest UDP port of the bot's media sockets, WebRTC ICE/RTP and SIP RTP/RTCP pairs (the firewall range); 0 = any ephemeral port.")
    rtp_port_max: int = Field(0, ge=0, le=65535, validate_default=True, description="Highest UDP port of that range (inclusive); 0 = any ephemeral port.")
    max_calls: int = Field(8, ge=1, le=1000, description="Concurrent calls before new ones are politely refused.")
    secret_key: str = Field("", description="Signs login cookies; empty = random per data_dir (stored there, 0600).")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # --- HTTP surface (docs/security.md) -------------------------------------------------------------
    http_docs: bool = Field(False, description="Serve FastAPI's /docs, /redoc and /openapi.json (API explorer); off by default.")
    metrics_token: str = Field("", description="Bearer token GET /metrics requires; empty = /metrics is open (firewall it).")
    http_max_body_bytes: int = Field(1048576, ge=1024, le=1 << 30, description="Request bodies larger than this get 413 before they are read.")
    trusted_proxies: str = Field("", description="Comma-separated IPs/networks of reverse proxies whose X-Forwarded-For/-Proto are believed; empty = none.")
    https_only: bool = Field(False, description="Reached over HTTPS only (TLS in front): HSTS on every response and Secure cookies.")
    login_hash_concurrency: int = Field(2, ge=1, le=64, description="Password hashes (argon2, ~64 MiB each) checked at once.")
    login_hash_queue: int = Field(4, ge=0, le=1000, description="Logins waiting for a hash slot; more get 429 + Retry-After.")
    login_ip_max_failures: int = Field(20, ge=1, le=100000, description="Failed logins from one client address in 5 minutes before it gets 429.")

    # --- language and speech --------------------------------------------------------------------------
    language: str = Field("zh-CN", description="Language pack of the bot (prompts, NLU, number reading).")
    asr_model: str = Field("", description="Model name from `ivr models list` or a directory; empty = best installed for language.")
    asr_grammar: bool = Field(True, description="Constrain recognition to the expected answer's words (order number, phone tail, yes/no, menu) with Vosk grammars from the language pack, when the model's language is the call's and the model supports grammars; an [unk] answer falls back to free speech.")
    asr_pool_size: int = Field(2, ge=0, le=64, description="Pre-warmed Vosk recognizers kept ready.")
    asr_workers: int = Field(2, ge=1, le=64, description="Threads running Vosk/espeak off the event loop.")
    asr_spares_per_call: float = Field(0.5, ge=0, le=1, description="Warm Vosk recognizers kept ready per open call that is not being recognised now (on top of asr_pool_size, rounded up): callers who start talking together do not wait for a recognizer to be created and warmed (~2 s each). 0 = fewest recognizers (memory), 1 = one per call; 0.5 (default): 8 wire callers 50-55 MB per call instead of 62-70, no latency difference measured (docs/benchmarks.md).")
    asr_max_recognizers: int = Field(0, ge=0, le=256, description="At most this many free-speech Vosk recognizers (0 = no limit): an utterance beyond it waits, its audio queued, for one handed back at another caller's final instead of getting a young one (a recognizer's first utterances cost 2-4x the CPU of later ones); bounds memory whatever the number of calls.")
    asr_recycle_speech_s: float = Field(60.0, gt=0, description="Recognizer is replaced after this much speech (bounds memory).")
    asr_overload_backlog_s: float = Field(3.0, ge=0, le=60, description="Overload guard: once any talking caller's audio has waited this many seconds for recognition (the decoding threads are behind), calls that start within the next 10 s are answered in keypad (DTMF) mode, so they add no decoding to the calls in progress (metric ivr_calls_degraded_total). 0 = off.")
    tts_backend: Literal["espeak", "pyttsx3"] = "espeak"
    tts_voice: str = Field("cmn-latn-pinyin", description="espeak-ng voice that speaks Mandarin from Chinese characters.")
    tts_speed: int = Field(175, ge=80, le=450, description="Words per minute for espeak-ng.")
    prompts_dir: Path | None = Field(None, description="Recorded prompt WAVs (<prompt_id>.wav) replacing TTS.")
    model_base_url: str = Field("https://alphacephei.com/vosk/models/", description="Where `ivr models pull` and `ivr serve --fetch-model` download registry models from (a mirror or local server).")
    demo_data: bool = Field(False, description="Seed the demo shop into an empty shop database at start-up (`ivr serve --demo`, `./run serve`).")

    # --- turn taking ---------------------------------------------------------------------------------
    vad_aggressiveness: int = Field(2, ge=0, le=3)
    vad_min_speech_ms: int = Field(200, ge=30, le=5000, description="Shorter bursts are noise, not speech.")
    vad_trailing_silence_ms: int = Field(500, ge=100, le=5000, description="Silence that ends an utterance.")
    vad_max_utterance_ms: int = Field(15000, ge=1000, le=120000)
    asr_early_final_ms: int = Field(
        200, ge=0, le=2000,
        description="Finalise the recogniser this long before the endpoint, so the final text is ready when the "
                    "endpoint comes (Vosk's final is 20-200 ms); should the caller go on, that final is thrown away "
                    "and the utterance decoded again from its start (same text). Not for utterances over 3 s nor "
                    "while more utterances are being decoded than asr_workers (then the final is computed at "
                    "the endpoint). 0: always at the endpoint (docs/asr.md).")
    asr_tail_ms: int = Field(
        300, ge=0, le=5000,
        description="Of a quiet stretch inside an utterance, the recogniser decodes this much; later quiet audio is "
                    "held and fed only if the caller goes on (same audio, same order), so at the endpoint only the "
                    "final is left to compute. 0: the recogniser gets all of it.")
    barge_in_min_ms: int = Field(300, ge=0, le=5000, description="Caller speech this long interrupts the bot (backchannels are shorter).")
    no_input_timeout_s: float = Field(7.0, gt=0, description="Silence before a reprompt.")
    max_no_input: int = Field(3, ge=1, description="Reprompts on silence before a polite hang-up.")
    max_call_s: float = Field(900.0, gt=0, description="Hard limit on call length.")

    # --- records ------------------------------------------------------------------------------------
    record_calls: bool = Field(False, description="Keep a stereo WAV per call (caller left, bot right).")
    retention_days: int = Field(90, ge=1, description="Call records and recordings older than this are purged.")

    # --- human agents (warm transfer) ----------------------------------------------------------------------
    service_hours: str = Field("", description="When agents take calls, HH:MM-HH:MM in shop time (Asia/Shanghai); empty = always. Outside: callback.")
    queue_max_wait_s: float = Field(120.0, gt=0, le=3600, description="A caller waits this long for an agent before a callback ticket is booked.")
    agent_ring_timeout_s: float = Field(20.0, gt=0, le=300, description="An unanswered offer goes to the next agent after this; the silent agent is set away.")
    whisper_summary: bool = Field(True, description="The agent hears the bot's one-line summary before the caller is connected.")

    # --- supervision (cost view and live wall, docs/analytics.md) ---------------------------------------------
    agent_cost_per_hour: float = Field(60.0, ge=0, le=100000, description="What one agent hour costs (CNY, wages and overhead); the dashboard's cost view.")
    bot_cost_per_call: float = Field(0.5, ge=0, le=10000, description="What one call with the bot costs (CNY: lines, compute).")
    agent_handle_time_s: float = Field(0.0, ge=0, le=86400, description="Agent time one contained call saves, seconds; 0 = the mean handle time of the period's agent-handled calls (300 s when there are none).")
    service_level_s: float = Field(20.0, gt=0, le=3600, description="Service level on the supervisor wall: share of queued callers answered by an agent within this many seconds.")
    wall_queue_alert: int = Field(3, ge=1, le=1000, description="The supervisor wall raises an alert when this many callers (or more) wait for an agent.")

    # --- text channels: web chat and messaging webhooks (docs/chat.md) ----------------------------------
    chat_idle_timeout_s: float = Field(1800.0, gt=0, le=86400, description="A web chat or messaging conversation idle this long is closed (its record saved); the next message starts a new one.")
    chat_max_sessions: int = Field(500, ge=1, le=100000, description="Open text conversations at once; more get 503.")
    webhook_secrets: dict[str, str] = Field(default_factory=dict, description='Messaging adapters and their HMAC-SHA256 secrets, e.g. {reference = "long-random"} (TOML; JSON in IVR_WEBHOOK_SECRETS); an adapter without a secret is refused.')
    webhook_max_skew_s: int = Field(300, ge=10, le=3600, description="Signed webhook messages whose timestamp is further than this from now are refused.")
    webhook_retention_h: float = Field(48.0, gt=0, le=8760, description="Message ids of signed webhooks are kept this long to refuse replays (at least twice the skew).")

    # --- shop (OMS) -------------------------------------------------------------------------------------
    oms_url: str = Field("", description="Base URL of the shop's own order system (docs/oms.md); empty = embedded SQL shop.")
    oms_token: str = Field("", description="Bearer token sent to oms_url; empty = none.")
    oms_timeout_s: float = Field(3.0, gt=0, le=60, description="Timeout of one request to oms_url.")
    return_days: int = Field(7, ge=0, le=365, description="七天无理由: days after delivery a return needs no reason.")
    quality_return_days: int = Field(15, ge=0, le=365, description="Days after delivery for returns/exchanges for quality problems.")
    offers: bool = Field(False, description="Personal offers: after a served need, at most one coupon, accessory coupon or restock notice per contact from the customer's purchase history (never to an upset caller; ivr/services/shop/offer_catalog.yaml). Off until the shop turns it on.")

    # --- caller identity (docs/security.md) -------------------------------------------------------------
    verify_tail_digits: int = Field(4, ge=4, le=11, description="Digits of the order's phone (from the end) a caller gives after the order number to be verified; 11 = the whole number.")
    verify_lock_failures: int = Field(5, ge=1, le=100, description="Wrong verification answers (per order, per caller) within verify_lock_window_h that lock self-service; the caller is offered a person.")
    verify_lock_window_h: float = Field(24.0, gt=0, le=720, description="Sliding window, in hours, of verify_lock_failures.")

    # --- cluster (docs/deploy-cluster.md) ---------------------------------------------------------------
    node_name: str = Field("", pattern=r"^[A-Za-z0-9_.-]{0,32}$", description="This node's name in a cluster (live-call index, events); empty = the host name.")
    redis_url: str = Field("", description="Redis URL of the state the nodes of a cluster share (live calls, login throttles, presence, events), e.g. redis://10.0.0.3:6379/0; empty = in this process (one node).")
    node_url: str = Field("", description="This node's HTTP address as the other nodes reach it (actions on its live calls are forwarded there), e.g. http://10.0.0.5:8080; empty = http://host:port.")
    drain_timeout_s: float = Field(300.0, ge=0, le=86400, description="With redis_url (a cluster node), SIGTERM drains: no new calls or chats (SIP OPTIONS and INVITEs 503, HAProxy check 404), live calls go on to their end, then the process exits; after this many seconds callers still waiting for an agent get a callback ticket and the rest hear the goodbye. A second SIGTERM or SIGINT stops at once. Without redis_url SIGTERM stops as before.")

    @field_validator("language")
    @classmethod
    def _language_tag(cls, v: str) -> str:
        if not v or "-" not in v:
            raise ValueError("expected a language tag such as zh-CN")
        return v

    @field_validator("ice_servers", mode="before")
    @classmethod
    def _ice_servers(cls, v: Any) -> Any:
        import json

        if isinstance(v, str):
            try:
                v = json.loads(v) if v.strip() else []
            except ValueError:
                raise ValueError('expected JSON such as [{"urls": "stun:host:3478"}]') from None
        if not isinstance(v, list):
            raise ValueError("expected a list of {urls, username, credential}")
        for item in v:
            urls = item.get("urls") if isinstance(item, dict) else None
            urls = [urls] if isinstance(urls, str) else urls
            if not urls or not all(isinstance(u, str) and u.split(":", 1)[0] in ("stun", "stuns", "turn", "turns")
                                   for u in urls):
                raise ValueError(f"each server needs urls starting with stun:, turn: or turns:, got {item!r}")
            if set(item) - {"urls", "username", "credential"}:
                raise ValueError(f"unknown keys in {item!r} (urls, username, credential)")
        return v

    @field_validator("rtp_port_max")
    @classmethod
    def _port_range(cls, v: int, info: ValidationInfo) -> int:
        low = info.data.get("rtp_port_min", 0)
        if bool(low) != bool(v) or low > v:
            raise ValueError(f"rtp_port_min ({low}) and rtp_port_max: set both (min <= max) or neither")
        return v

    @field_validator("sip_trusted_peers", "trusted_proxies")
    @classmethod
    def _networks(cls, v: str) -> str:
        import ipaddress

        for item in (s.strip() for s in v.split(",")):
            if item:
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise ValueError(f"not an IP address or network: {item!r}") from None
        return v

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _webhook_secrets(cls, v: Any) -> Any:
        import json
        import re

        if isinstance(v, str):
            try:
                v = json.loads(v) if v.strip() else {}
            except ValueError:
                raise ValueError('expected JSON such as {"reference": "a-long-random-secret"}') from None
        if not isinstance(v, dict):
            raise ValueError("expected a mapping adapter name -> secret")
        for name, secret in v.items():
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", str(name)):
                raise ValueError(f"adapter name {name!r}: lowercase letters, digits, _ and -, at most 32")
            if not isinstance(secret, str) or len(secret) < 16:
                raise ValueError(f"webhook secret of {name!r}: a string of at least 16 characters")
        return v

    @field_validator("service_hours")
    @classmethod
    def _service_hours(cls, v: str) -> str:
        from datetime import time

        v = v.strip()
        if v:
            try:
                start, end = v.split("-", 1)
                time.fromisoformat(start.strip())
                time.fromisoformat(end.strip())
            except ValueError:
                raise ValueError("expected HH:MM-HH:MM, e.g. 09:00-21:00") from None
        return v

    @property
    def database_url(self) -> str:
        """The effective SQLAlchemy URL."""
        return self.db_url or f"sqlite:///{self.data_dir / 'ivr.db'}"


_ENV_PREFIX = "IVR_"
MIN_SECRET_KEY = 32
_PLACEHOLDERS = ("change-me", "changeme", "change_me", "change-this", "replace-me")


def secret_key_problem(key: str) -> str:
    """Why a configured ``secret_key`` must not sign logins and record tokens ("" = fine, or unset: random)."""
    if not key:
        return ""
    if any(p in key.lower() for p in _PLACEHOLDERS):
        return "secret_key is the example placeholder; set a long random value (openssl rand -hex 32)"
    if len(key) < MIN_SECRET_KEY:
        return (f"secret_key has {len(key)} characters, fewer than {MIN_SECRET_KEY}; set a long random value "
                "(openssl rand -hex 32) or leave it empty for a random one in the data dir")
    return ""


def _flatten_toml(doc: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            flat.update(_flatten_toml(value))
        else:
            flat[key] = value
    return flat


def _toml_path() -> Path | None:
    env = os.environ.get("IVR_CONFIG")
    if env:
        p = Path(env)
        if not p.is_file():
            raise ConfigError(f"IVR_CONFIG points to {p}, which is not a file")
        return p
    p = Path("ivr.toml")
    return p if p.is_file() else None


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Build and validate settings; raises ConfigError with a one-line message on any bad value."""
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    path = _toml_path()
    if path is not None:
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"cannot read config file {path}: {e}") from None
        for k, v in _flatten_toml(doc).items():
            values[k] = v
            source[k] = str(path)
    fields = Settings.model_fields
    for name in fields:
        env = os.environ.get(_ENV_PREFIX + name.upper())
        if env is not None:
            values[name] = env
            source[name] = _ENV_PREFIX + name.upper()
    for k, v in (overrides or {}).items():
        if v is not None:
            values[k] = v
            source[k] = "command line"
    unknown = sorted(set(values) - set(fields))
    if unknown:
        where = source.get(unknown[0], "?")
        raise ConfigError(f"unknown setting '{unknown[0]}' (from {where}); known: {', '.join(sorted(fields))}")
    try:
        return Settings(**values)
    except ValidationError as e:
        err = e.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "?"
        raise ConfigError(
            f"invalid setting '{name}' = {values.get(name)!r} (from {source.get(name, 'default')}): {err['msg']}"
        ) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, loaded on first use."""
    return load_settings()
