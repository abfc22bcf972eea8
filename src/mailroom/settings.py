"""One typed settings object, built once at start-up and passed down.

Sources, strongest first: explicit keyword arguments (the CLI's flags), ``MAILROOM_*``
environment variables, the TOML file (``--config``, ``MAILROOM_CONFIG`` or
``<data_dir>/mailroom.toml``), then the defaults here. Nothing reads the environment at
import time: :func:`load_settings` is called by the entry points.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mailroom.domain.ratelimits import check_limit

#: Secrets that ship in examples; refused outside development mode.
KNOWN_DEFAULT_SECRETS = frozenset({"", "changeme", "change-me", "secret", "development-only-secret"})


class RateLimitRule(BaseModel):
    """A rate-limit rule: ``limit`` such as ``100/minute`` applied per ``per`` to ``methods``.

    ``per``: ``principal`` (the caller: their user, an owner-less key, or the client network of
    an anonymous call), ``key`` (calls made with an API key), ``user`` (calls acting as a
    user, whatever the credentials), ``ip`` (every call from a client network) or ``global``
    (one counter for everyone). ``methods`` is a method-name glob, ``api`` narrows the rule to
    one API. Each call counts its method's cost. See docs/access.md.
    """

    model_config = ConfigDict(extra="forbid")

    limit: str = Field(description="Amount per window: 100/minute, 5000/day, 10/5 seconds.")
    methods: str = Field(default="*", description="Method-name glob (admin.users.*).")
    api: str | None = Field(default=None, description="Only methods of this API (admin, mail, ...).")
    per: Literal["principal", "key", "user", "ip", "global"] = "principal"
    name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="Policy name in the RateLimit headers; default: rule<N>, or 'default' for a lone rule.",
    )

    @field_validator("limit")
    @classmethod
    def _limit(cls, value: str) -> str:
        return check_limit(value)


class ProviderRoute(BaseModel):
    """Route an API (``admin``) or methods (``admin.users.get``, globs allowed) to a provider."""

    model_config = ConfigDict(extra="forbid")

    methods: str
    provider: str
    url: str | None = None
    credentials: SecretStr | None = None


class Settings(BaseSettings):
    """Every setting of mailroom; each is also ``MAILROOM_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="MAILROOM_",
        extra="forbid",
        env_nested_delimiter="__",
        validate_default=True,
    )

    # Where things live.
    data_dir: Path = Field(
        default=Path("data"), description="Folder for the SQLite database, blobs and keys."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: SQLite file in the data folder. "
        "PostgreSQL: postgresql+asyncpg://user:pass@host/db",
    )
    durable_commits: Literal["mail", "all"] = Field(
        default="mail",
        description="mail: commits that acknowledge mail (ingest, the outbound queue) are on disk "
        "before they return; other writes (admin, client settings) reach the disk within "
        "commit_flush_ms, like PostgreSQL's synchronous_commit=off: a power loss may lose the last "
        "of them, never corrupt or reorder anything. all: every commit waits for the disk.",
    )
    commit_flush_ms: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="With durable_commits=mail on SQLite: how soon a write that did not wait for "
        "the disk is flushed to it.",
    )
    render_cache_entries: int = Field(
        default=10_000,
        ge=0,
        description="Users each worker keeps as typed records, and REST as JSON, for admin.users.list and "
        "admin.users.get (a few KB each), keyed by a version the database changes on every "
        "write, so never stale, whichever worker or tool wrote (docs/architecture.md, Storage). "
        "0: no cache.",
    )
    config: Path | None = Field(default=None, description="TOML file with settings (read at start-up).")
    mode: Literal["development", "production", "test"] = Field(
        default="production", description="development allows default secrets and verbose errors."
    )
    secret_key: SecretStr = Field(
        default=SecretStr(""),
        description="Server secret (SRS, signed links). Generated into the data folder when empty.",
    )

    # HTTP serving.
    host: str = "127.0.0.1"
    port: int = Field(default=8025, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest request body (413 above)."
    )
    public_url: str | None = Field(
        default=None,
        description="Base URL clients use, for links and docs. An https://host[:port]/ URL is also "
        "where the DNS helper advertises autoconfig and autodiscover.",
    )
    hostname: str = Field(
        default="mail.example.org",
        description="This server's public mail host name: the MX and SRV target, the server mail "
        "clients are told to use (autoconfig, autodiscover), the SMTP greeting. The server warns at "
        "start while it is a placeholder (example.org, .test, .localhost, ...).",
    )
    access_log: bool = Field(
        default=False,
        description="uvicorn's per-request access log (stderr). Off by default: it costs about as much "
        "CPU as a whole small request, and usage accounting already records every call.",
    )
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = Field(
        default="warning",
        description="Level of the logs of mailroom and its libraries (aiosmtpd, websockets) on stderr; "
        "uvicorn's own start-up lines stay at info. debug and trace log every SMTP line and WebSocket "
        "frame. Credentials are redacted from every log line whatever the level.",
    )

    # Auth.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_cost: int = Field(default=65536, ge=8, description="KiB")
    argon2_parallelism: int = Field(default=4, ge=1)
    password_check_concurrency: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Most password checks (argon2id) a worker runs at once, in threads off its event loop; "
        "each takes argon2_memory_cost KiB and argon2_parallelism threads while it runs, and further "
        "logins wait their turn. One per worker keeps as many checks running as there are workers.",
    )
    auth_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="How long a worker keeps an API key's lookup. Changes made through this worker "
        "apply at once; other workers see a revoked key or a disabled user within this time. 0: no cache.",
    )
    session_ttl_seconds: int = Field(default=3600, ge=60)
    mobile_session_ttl_seconds: int = Field(default=30 * 86400, ge=60)
    session_refresh_ttl_seconds: int = Field(
        default=30 * 86400,
        ge=60,
        description="How long a session's refresh token can renew it (mail.sessions.refresh); each "
        "renewal gives a new one with this lifetime, so a client in use stays signed in.",
    )
    default_domain: str | None = Field(
        default=None,
        description="Domain of bare user names at mail client login and sign-up; "
        "default: the first domain (by name) with sign-up enabled.",
    )

    # LDAP (docs/auth.md, "LDAP"): off unless ldap_url is set.
    ldap_url: str | None = Field(
        default=None,
        pattern=r"^ldaps?://[^/\s]+/?$",
        description="Directory to check passwords against: ldaps://host[:port], or ldap://host[:port] "
        "with ldap_starttls (plain ldap:// only to a loopback host or with ldap_allow_plaintext).",
    )
    ldap_starttls: bool = Field(default=False, description="Upgrade an ldap:// connection with StartTLS.")
    ldap_allow_plaintext: bool = Field(
        default=False,
        description="Allow ldap:// without StartTLS to a host that is not loopback (passwords then "
        "cross the network in clear).",
    )
    ldap_ca_file: Path | None = Field(
        default=None,
        description="PEM CA bundle that signs the directory's certificate; default: the system's.",
    )
    ldap_verify_tls: bool = Field(
        default=True, description="Verify the directory's certificate and host name."
    )
    ldap_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="Longest wait for the directory per login (connect and each step).",
    )
    ldap_max_connections: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Directory requests in flight at once per worker (one thread each).",
    )
    ldap_bind_dn: str | None = Field(
        default=None, description="Service account that searches for users (search + bind); none: anonymous."
    )
    ldap_bind_password: SecretStr | None = Field(default=None, description="The service account's password.")
    ldap_user_base: str = Field(default="", description="Where users are searched (subtree).")
    ldap_user_filter: str = Field(
        default="(&(objectClass=inetOrgPerson)(mail={login}))",
        description="Who may log in: {login} (the address), {localpart} and {domain} are escaped "
        "(RFC 4515). A directory user who no longer matches is refused.",
    )
    ldap_user_dn_template: str | None = Field(
        default=None,
        description="Direct bind instead of search + bind: a DN such as "
        "uid={localpart},ou=people,dc=example,dc=org ({login}, {localpart}, {domain}; escaped).",
    )
    ldap_provision: bool = Field(
        default=False,
        description="Give a mailbox to a directory user who logs in, matches ldap_user_filter and has "
        "an address in an existing mail domain.",
    )
    ldap_display_name_attribute: str = Field(
        default="displayName", description="Attribute of the display name."
    )
    ldap_quota_attribute: str | None = Field(
        default=None, description="Attribute holding the quota in bytes; none: the domain's default."
    )
    ldap_alias_attribute: str | None = Field(
        default=None, description="Attribute listing further addresses, made aliases of the mailbox."
    )
    ldap_group_base: str | None = Field(
        default=None, description="Where groups are searched; default: ldap_user_base."
    )
    ldap_group_filter: str = Field(
        default="(|(member={dn})(uniqueMember={dn}))",
        description="The groups a user is in ({dn}: the user's DN, escaped).",
    )
    ldap_admin_groups: list[str] = Field(
        default_factory=list,
        description="Group DNs whose members are global administrators (set on every login); "
        "empty: administrators are managed in mailroom.",
    )
    ldap_manager_groups: dict[str, str] = Field(
        default_factory=dict,
        description="Group DN -> mail domain whose members manage that domain (set on every login); "
        "empty: managers are managed in mailroom.",
    )

    # Domains.
    dkim_selector: str = Field(default="dkim", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    dmarc_policy: Literal["none", "quarantine", "reject"] = Field(
        default="none",
        description="The p= of the DMARC record suggested for each domain. Start with none (reports "
        "only), read the reports, then tighten to quarantine and reject (docs/api.md, DNS records).",
    )
    dmarc_rua: str | None = Field(
        default="postmaster",
        description="Where DMARC aggregate reports go: a local part (each domain's own, "
        "postmaster@<domain>) or a full address; empty: ask for no reports.",
    )
    dmarc_ruf: str | None = Field(
        default=None, description="Where DMARC failure reports go, like dmarc_rua; default: none."
    )
    dns_resolver: str | None = Field(
        default=None,
        pattern=r"^[0-9A-Fa-f:.]+(@[0-9]{1,5})?$",
        description="The DNS server the live check of a domain's records asks (GET "
        "/domains/{d}/dns/check): an IP address, optionally @port; default: the system's "
        "(/etc/resolv.conf).",
    )
    dns_timeout_seconds: float = Field(
        default=3.0, gt=0, le=30, description="How long the live DNS check waits for each answer."
    )

    # Registry routing and remote access.
    providers: list[ProviderRoute] = Field(default_factory=list)
    disabled_protocols: list[str] = Field(default_factory=list)
    remote_disabled: list[str] = Field(
        default_factory=list, description="Method globs not callable remotely (protocol:glob or glob)."
    )
    interop_api: bool = Field(
        default=False,
        description="Serve the interop API (validator1.*, the JSON-RPC specification's examples) "
        "to anyone, for conformance testing. Off in production.",
    )
    remote_timeout_seconds: float = Field(
        default=30.0, gt=0, description="How long a call routed to a remote mailroom may take."
    )

    # RPC front-ends (JSON-RPC 2.0, XML-RPC) and HTTP compression.
    jsonrpc_max_batch: int = Field(
        default=100,
        ge=1,
        description="Most calls one JSON-RPC batch or XML-RPC multicall may hold (more is refused whole).",
    )
    xmlrpc_allow_none: bool = Field(
        default=True,
        description="Accept and send XML-RPC <nil/> (the extension Python's allow_none=True speaks). "
        "When off, a method whose result is None answers with a fault instead.",
    )
    rpc_max_depth: int = Field(
        default=64, ge=4, le=500, description="Deepest nesting of arrays/objects an RPC request may carry."
    )
    gzip_min_bytes: int = Field(
        default=1024,
        ge=0,
        description="Compress (gzip/deflate) HTTP responses of at least this many bytes "
        "when the client accepts it.",
    )
    max_decompressed_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1024,
        description="Largest request body after gzip/deflate decoding (413 above).",
    )

    # Rate limits and accounting.
    redis_url: str | None = None
    redis_key_prefix: str = Field(
        default="mailroom",
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="Prefix of every Redis key mailroom writes (several deployments can share a server).",
    )
    rate_limits: list[RateLimitRule] = Field(default_factory=list)
    method_costs: dict[str, int] = Field(
        default_factory=dict,
        description='Cost of a call per method-name glob ({"mail.*.send": 10}), overriding the '
        "method's declared cost; rate limits count costs, not calls.",
    )
    client_network_prefix_v4: int = Field(
        default=24,
        ge=8,
        le=32,
        description="Anonymous callers and failed logins are counted per IPv4 network of this prefix length.",
    )
    client_network_prefix_v6: int = Field(
        default=48,
        ge=16,
        le=128,
        description="Anonymous callers and failed logins are counted per IPv6 network of this prefix length.",
    )
    usage_flush_seconds: float = Field(
        default=5.0, gt=0, description="How often usage counts kept in memory are written to the database."
    )
    usage_retention_days: int = Field(
        default=400, ge=1, description="How long per-minute usage counts are kept (billing reports)."
    )
    metrics_enabled: bool = Field(default=True, description="Serve Prometheus metrics at /metrics.")
    metrics_networks: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"],
        description="Networks that may read /metrics without a token (default: loopback only).",
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="Bearer token that lets any client read /metrics."
    )
    login_failures_per_network: str = Field(
        default="5/hour",
        description="Failed password logins allowed per client network (IPv4 /24, IPv6 /48) before "
        "its logins are refused (429).",
    )
    login_failures_per_account: str = Field(
        default="50/day", description="Failed password logins allowed per account before it is locked (429)."
    )
    login_failures_per_known_network: str = Field(
        default="50/hour",
        description="Failed password logins allowed per client network for an account that logged in "
        "successfully from it within login_exemption_seconds: a success raises that account's network "
        "limit to this, never removes it, and gives other accounts nothing.",
    )
    login_exemption_seconds: int = Field(
        default=86400,
        ge=0,
        description="After a successful login, the account is known on its client network this long: "
        "its attempts from there get the raised network limit and an account limit of their own.",
    )
    idempotency_ttl_seconds: int = Field(
        default=86400, ge=60, description="How long an Idempotency-Key and its stored response are kept."
    )
    idempotency_running_seconds: int = Field(
        default=300,
        ge=1,
        description="A request with an Idempotency-Key still unfinished after this long is taken as dead "
        "(its key may be used again).",
    )

    # Push (docs/push.md) and uploads (docs/client-api.md).
    push_replay_events: int = Field(
        default=200, ge=0, le=100_000, description="Events kept per user for replay after a reconnection."
    )
    push_replay_minutes: int = Field(
        default=10, ge=1, le=1440, description="How long events are kept for replay after a reconnection."
    )
    push_queue_size: int = Field(
        default=256,
        ge=1,
        description="Events that may wait for one slow push client before it is dropped (it reconnects).",
    )
    push_heartbeat_seconds: float = Field(
        default=15.0, gt=0, description="Idle push connections get a heartbeat this often."
    )
    push_sse_max_seconds: float = Field(
        default=300.0,
        gt=0,
        description="An SSE stream ends after this long (the client reconnects with Last-Event-ID), "
        "so that a graceful shutdown never waits longer for open streams.",
    )
    upload_max_bytes: int = Field(
        default=25 * 1024 * 1024, ge=1, description="Largest attachment one upload may carry (413 above)."
    )
    upload_ttl_hours: float = Field(
        default=24.0, gt=0, description="Uploads no sent email or draft uses are deleted after this long."
    )
    upload_expiry_interval_seconds: float = Field(
        default=600.0, gt=0, description="How often each worker deletes expired uploads."
    )
    housekeeping_interval_seconds: float = Field(
        default=600.0,
        gt=0,
        description="How often each worker's housekeeping runs: temporary blob files a crash left "
        "(over an hour old), unreferenced blobs, expired sessions and invites.",
    )
    blob_gc_grace_seconds: float = Field(
        default=3600.0,
        ge=1,
        description="An unreferenced blob is collected only this long after it was last registered, "
        "so a delivery about to refer to it again keeps it.",
    )

    # Mail ingest (SMTP/LMTP listeners, delivery).
    smtp_host: str = Field(default="127.0.0.1", description="Address the inbound SMTP listener binds.")
    smtp_port: int = Field(default=2525, ge=0, le=65535, description="Inbound SMTP port; 0 disables it.")
    public_smtp_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port other servers reach inbound SMTP on, where a proxy or NAT maps it; default: "
        "smtp_port. MX delivery always uses 25, so the DNS helper warns about any other.",
    )
    lmtp_host: str = Field(default="127.0.0.1", description="Address the LMTP listener binds.")
    lmtp_port: int = Field(default=2424, ge=0, le=65535, description="LMTP port; 0 disables it.")
    # IMAP (docs/imap.md).
    imap_host: str = Field(default="127.0.0.1", description="Address the IMAP and IMAPS listeners bind.")
    imap_port: int = Field(default=2143, ge=0, le=65535, description="IMAP port (STARTTLS); 0 disables it.")
    imaps_port: int = Field(
        default=2993, ge=0, le=65535, description="IMAPS port (implicit TLS); 0 disables it."
    )
    imap_allow_plaintext_loopback: bool = Field(
        default=True,
        description="Allow IMAP logins without TLS from loopback (nginx or a local client); elsewhere "
        "LOGIN and AUTHENTICATE need STARTTLS or IMAPS.",
    )
    max_message_bytes: int = Field(
        default=50 * 1024 * 1024, ge=1024, description="Largest message accepted (552 5.3.4 above)."
    )
    max_recipients: int = Field(
        default=1000, ge=1, description="Most recipients one SMTP/LMTP transaction may have."
    )
    recipient_delimiter: str = Field(
        default="+",
        max_length=8,
        description="Characters that separate an address extension (alice+news@); each one counts; "
        "empty disables extensions.",
    )
    max_hops: int = Field(
        default=50, ge=1, description="Received headers a message may carry before it is refused as a loop."
    )
    blob_dir: Path | None = Field(
        default=None, description="Folder of message blobs; default: <data_dir>/blobs."
    )
    thread_subject_window_days: int = Field(
        default=7,
        ge=0,
        description="A reply without References joins a thread with the same subject active this recently.",
    )
    changes_retention_days: int = Field(
        default=30,
        ge=1,
        description="How long the change log keeps each change (and destroyed ids as tombstones): "
        "a client whose state is older must sync again (JMAP cannotCalculateChanges).",
    )
    autoreply_interval_days: int = Field(
        default=7, ge=1, description="An auto-reply goes to the same sender at most once per this many days."
    )

    # Look-ups for an MTA in front of mailroom (docs/internal-api.md).
    socketmap_host: str = Field(
        default="127.0.0.1", description="Address the Postfix socketmap listener binds (TCP)."
    )
    socketmap_port: int = Field(
        default=0, ge=0, le=65535, description="Postfix socketmap TCP port; 0 disables it (the default)."
    )
    socketmap_path: Path | None = Field(
        default=None, description="UNIX socket for Postfix socketmap look-ups; unset: none."
    )
    mta_lmtp_nexthop: str = Field(
        default="",
        max_length=255,
        description="What the socketmap transport table answers for our own domains; empty: "
        "mailroom's LMTP listener (lmtp:inet:<lmtp_host>:<lmtp_port>).",
    )

    internal_secret: SecretStr | None = Field(
        default=None,
        description="Shared secret (header X-Mailroom-Internal-Secret) that lets hosts other than "
        "loopback call /internal/* (nginx auth_http); unset: loopback only.",
    )
    proxy_smtp_backend: str = Field(
        default="",
        max_length=255,
        pattern=r"^$|^(\[[0-9A-Fa-f:.]+\]|[0-9.]+):[0-9]{1,5}$",
        description="IP:port nginx proxies authenticated SMTP to; empty: mailroom's submission listener.",
    )
    proxy_imap_backend: str = Field(
        default="",
        max_length=255,
        pattern=r"^$|^(\[[0-9A-Fa-f:.]+\]|[0-9.]+):[0-9]{1,5}$",
        description="IP:port nginx proxies IMAP to; empty: mailroom's IMAP listener (127.0.0.1:2143).",
    )
    proxy_pop3_backend: str = Field(
        default="",
        max_length=255,
        pattern=r"^$|^(\[[0-9A-Fa-f:.]+\]|[0-9.]+):[0-9]{1,5}$",
        description="IP:port nginx proxies POP3 to; empty: mailroom's POP3 listener (127.0.0.1:2110).",
    )
    proxy_wait_attempts: int = Field(
        default=3,
        ge=0,
        le=100,
        description="Failed proxied logins on one connection after which nginx is told to close it "
        "instead of waiting (Auth-Wait) and letting the client try again.",
    )

    # XCLIENT and rspamd (docs/internal-api.md, docs/deploy.md).
    smtp_trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Networks (CIDR) whose connections to the SMTP and submission listeners may send "
        "XCLIENT (nginx's mail proxy, Postfix) to pass on the real client; empty: nobody (550 5.7.0).",
    )
    rspamd_url: str = Field(
        default="",
        max_length=255,
        pattern=r"^$|^https?://[^\s/]+(/.*)?$",
        description="rspamd's normal worker (http://127.0.0.1:11333): ingest asks its /checkv2 for a "
        "verdict on mail from untrusted hosts; empty: no scan.",
    )
    rspamd_timeout: float = Field(
        default=10.0, gt=0, le=300, description="Seconds to wait for rspamd's verdict on one message."
    )
    rspamd_failure: Literal["tempfail", "accept"] = Field(
        default="tempfail",
        description="When rspamd cannot be asked: 'tempfail' answers 451 4.7.1 (the sender retries), "
        "'accept' stores the mail unscanned (X-Spam-Status: unscanned).",
    )
    rspamd_password: SecretStr | None = Field(
        default=None, description="rspamd's controller password (the Password header), when it wants one."
    )
    spam_trusted_hosts: list[str] = Field(
        default_factory=list,
        description="Networks (CIDR) whose Authentication-Results and X-Spam-* headers are kept (Postfix "
        "with rspamd as milter); from anyone else they are removed before ingest, once rspamd_url or "
        "this list is set.",
    )

    dovecot_dict_path: Path | None = Field(
        default=None,
        description="UNIX socket of the Dovecot dict-proxy listener (passdb, userdb, quota_clone); "
        "unset: none.",
    )
    dovecot_home: str = Field(
        default="/var/vmail/%d/%n",
        max_length=255,
        description="The home (mail folder) userdb answers; %d is the domain, %n the local part.",
    )
    dovecot_nopassword: bool = Field(
        default=False,
        description="passdb answers 'nopassword' instead of the hash: only when every login reaches "
        "Dovecot through a proxy that checked the password with mailroom (nginx auth_http).",
    )

    # POP3 (docs/pop3.md).
    pop3_host: str = Field(default="127.0.0.1", description="Address the POP3 and POP3S listeners bind.")
    pop3_port: int = Field(
        default=2110, ge=0, le=65535, description="POP3 port (STLS, RFC 2595); 0 disables it."
    )
    pop3s_port: int = Field(
        default=2995, ge=0, le=65535, description="POP3 over implicit TLS; 0 disables it."
    )
    pop3_allow_plaintext_loopback: bool = Field(
        default=True,
        description="Let POP3 clients on loopback log in without TLS (a local client, a proxy in "
        "front); from anywhere else USER/PASS and AUTH need STLS or the POP3S port first.",
    )
    pop3_idle_timeout_seconds: float = Field(
        default=600.0,
        ge=1.0,
        le=86400.0,
        description="A POP3 connection with no command for this long is closed (RFC 1939: at least "
        "10 minutes).",
    )

    # Submission and outbound delivery (docs/outbound.md).
    submission_host: str = Field(default="127.0.0.1", description="Address the submission listener binds.")
    submission_port: int = Field(
        default=2587, ge=0, le=65535, description="Authenticated submission port (STARTTLS); 0 disables it."
    )
    public_submission_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port mail clients reach submission on, where a proxy or NAT maps it (587 is the "
        "standard); default: submission_port. Used in the SRV record, autoconfig and autodiscover.",
    )
    submission_allow_plaintext_loopback: bool = Field(
        default=False,
        description="Let clients on loopback authenticate and send without STARTTLS (local tools).",
    )
    submission_rate_limit: str = Field(
        default="200/hour", description="Messages one user may submit per window (451 4.7.1 above)."
    )
    tls_cert_file: Path | None = Field(
        default=None,
        description="PEM certificate for STARTTLS; default <data_dir>/tls/cert.pem, "
        "self-signed and made on first run.",
    )
    tls_key_file: Path | None = Field(
        default=None, description="PEM private key for STARTTLS; default <data_dir>/tls/key.pem."
    )
    relay_host: str | None = Field(
        default=None,
        description="Smarthost for mail to other domains (MAILROOM_RELAY_HOST). Without one, remote "
        "mail is held (relay_missing=defer) or bounced (relay_missing=bounce): no MX delivery.",
    )
    relay_port: int = Field(default=25, ge=1, le=65535, description="Smarthost port.")
    relay_tls: Literal["none", "starttls", "tls"] = Field(
        default="starttls", description="Smarthost TLS: none, starttls (required) or tls (implicit)."
    )
    relay_verify_tls: bool = Field(default=True, description="Verify the smarthost's certificate.")
    relay_username: str | None = Field(default=None, description="Smarthost AUTH user name.")
    relay_password: SecretStr | None = Field(default=None, description="Smarthost AUTH password.")
    relay_missing: Literal["defer", "bounce"] = Field(
        default="defer",
        description="Remote mail with no smarthost to use: keep retrying until the queue age "
        "limit (defer) or bounce at once (bounce).",
    )
    relay_timeout_seconds: float = Field(default=60.0, gt=0, description="SMTP timeout talking to a relay.")
    queue_retry_base_seconds: int = Field(
        default=60, ge=1, description="First retry delay after a temporary failure; doubles each time."
    )
    queue_retry_max_seconds: int = Field(default=4 * 3600, ge=1, description="Longest delay between retries.")
    queue_max_age_seconds: int = Field(
        default=5 * 86400, ge=60, description="A message still undelivered this long after queuing bounces."
    )
    queue_poll_seconds: float = Field(
        default=5.0, gt=0, description="How often the queue worker looks for work."
    )
    queue_lease_seconds: int = Field(
        default=600,
        ge=10,
        description="How long a worker holds a claimed queue entry before others may take it.",
    )
    queue_retention_days: int = Field(
        default=30,
        ge=1,
        description="Finished queue entries (every recipient delivered or failed) are deleted this long "
        "after they finished; their delivery status goes with them.",
    )
    jmap_path: str = Field(
        default="/jmap",
        pattern=r"^/[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$",
        description="Where the JMAP API, upload, download, EventSource and WebSocket endpoints live "
        "(the session resource is also at /.well-known/jmap).",
    )
    jmap_max_size_request: int = Field(
        default=10_000_000,
        ge=1024,
        description="JMAP maxSizeRequest: the largest API request body, in bytes.",
    )
    jmap_max_concurrent_requests: int = Field(
        default=8, ge=1, le=1000, description="JMAP maxConcurrentRequests, per account and worker."
    )
    jmap_max_concurrent_upload: int = Field(
        default=8, ge=1, le=1000, description="JMAP maxConcurrentUpload, per account and worker."
    )
    jmap_max_calls_in_request: int = Field(
        default=64, ge=1, le=10_000, description="JMAP maxCallsInRequest: method calls in one request."
    )
    jmap_max_objects_in_get: int = Field(
        default=1000, ge=1, le=100_000, description="JMAP maxObjectsInGet: ids one /get may ask for."
    )
    jmap_max_objects_in_set: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="JMAP maxObjectsInSet: creates, updates and destroys in one /set.",
    )
    keyserver_upload_limit: str = Field(
        default="20/hour",
        description="Keys one client network may upload to the key server (POST /pks/add) per window "
        "(429 above).",
    )
    keyserver_upstream: str | None = Field(
        default=None,
        description="Another key server (http:// or https:// base URL, HKP) asked for the keys of an "
        "external address when a signed-in user looks it up and the directory has none; what it "
        "returns for that address is listed as fetched. Empty: never ask.",
    )
    keyserver_confirm_hours: int = Field(
        default=48,
        ge=1,
        le=720,
        description="How long the link mailed to confirm a key uploaded for a local address stays valid.",
    )
    jmap_push_allow_loopback: bool = Field(
        default=False,
        description="Let JMAP PushSubscriptions deliver to http:// URLs on loopback addresses "
        "(tests, local development); otherwise only https:// URLs to public hosts.",
    )
    jmap_max_delayed_send_seconds: int = Field(
        default=7 * 86400,
        ge=0,
        le=366 * 86400,
        description="JMAP maxDelayedSend: how far ahead an EmailSubmission may be held "
        "(FUTURERELEASE holdUntil/holdFor) and canceled until then; 0: no delayed send.",
    )
    # OpenID Connect (docs/auth.md): web login and provider access tokens on the API.
    oidc_issuer: str | None = Field(
        default=None,
        description="The provider's issuer URL (its /.well-known/openid-configuration is read); "
        "empty: OpenID Connect is off. https, or http on a loopback address only.",
    )
    oidc_client_id: str | None = Field(default=None, description="This server's client id at the provider.")
    oidc_client_secret: SecretStr | None = Field(
        default=None, description="The client secret (client_secret_basic); never logged or shown."
    )
    oidc_provider_name: str = Field(
        default="OpenID Connect",
        max_length=64,
        description='The provider\'s name on the login page: "Sign in with <name>".',
    )
    oidc_scopes: str = Field(
        default="openid email profile", description="Scopes the web login asks for (openid is added)."
    )
    oidc_redirect_url: str | None = Field(
        default=None,
        description="The callback URL registered at the provider; default: public_url (else the "
        "request's own origin) + /web/oidc/callback.",
    )
    oidc_email_claim: str = Field(
        default="email", description="The claim that holds the mailbox address the login stands for."
    )
    oidc_allowed_domains: list[str] = Field(
        default_factory=list,
        description="Mail domains whose users may log in with OpenID Connect; empty: every domain.",
    )
    oidc_groups_claim: str = Field(default="groups", description="The claim that lists the user's groups.")
    oidc_admin_group: str | None = Field(
        default=None,
        description="Members of this group are global admins, others are not (the provider decides); "
        "empty: the admin flag is mailroom's own.",
    )
    oidc_manager_claim: str | None = Field(
        default=None,
        description="A claim listing the mail domains the user manages (the provider decides); "
        "empty: domain managers are mailroom's own.",
    )
    oidc_bearer: bool = Field(
        default=True, description="Accept the provider's access tokens as Bearer credentials on the API."
    )
    oidc_audience: str | None = Field(
        default=None, description="The audience access tokens must name; default: oidc_client_id."
    )
    oidc_introspection: bool = Field(
        default=False,
        description="Check access tokens at the provider's introspection endpoint (RFC 7662) "
        "instead of as JWTs against its keys.",
    )
    oidc_scope_prefix: str = Field(
        default="mailroom:",
        max_length=64,
        description="Access-token scopes with this prefix are method-name globs, like an API key's "
        "scopes (mailroom:mail.* allows mail.*); a token with none acts with all its user's rights.",
    )
    oidc_jwks_cache_seconds: float = Field(
        default=3600.0, gt=0, description="How long the provider's keys (JWKS) are kept."
    )
    oidc_jwks_refresh_seconds: float = Field(
        default=10.0,
        ge=0,
        description="A token signed by an unknown key makes the keys be fetched again, at most this often.",
    )
    oidc_leeway_seconds: int = Field(
        default=60, ge=0, le=600, description="Clock skew allowed on exp, nbf and iat."
    )
    oidc_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Timeout of each request to the provider."
    )

    @field_validator("submission_rate_limit", "keyserver_upload_limit")
    @classmethod
    def _submission_limit(cls, value: str) -> str:
        from limits import parse_many

        if len(parse_many(value)) != 1:  # parse_many raises ValueError for nonsense
            raise ValueError("one limit, such as 200/hour")
        return value.strip()

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str) -> str:
        from mailroom.domain.names import normalize_domain

        return normalize_domain(value)

    @field_validator("dmarc_rua", "dmarc_ruf")
    @classmethod
    def _dmarc_report_address(cls, value: str | None) -> str | None:
        from mailroom.domain.names import normalize_address, normalize_localpart

        value = (value or "").strip().removeprefix("mailto:")
        if not value:
            return None
        return normalize_address(value) if "@" in value else normalize_localpart(value)

    @field_validator("default_domain")
    @classmethod
    def _default_domain(cls, value: str | None) -> str | None:
        from mailroom.domain.names import normalize_domain

        return None if value is None else normalize_domain(value)

    @field_validator("oidc_allowed_domains")
    @classmethod
    def _oidc_domains(cls, value: list[str]) -> list[str]:
        from mailroom.domain.names import normalize_domain

        return [normalize_domain(v) for v in value]

    @field_validator("oidc_issuer")
    @classmethod
    def _oidc_issuer(cls, value: str | None) -> str | None:
        import ipaddress
        from urllib.parse import urlsplit

        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme == "http":
            try:
                loopback = ipaddress.ip_address(parts.hostname or "").is_loopback
            except ValueError:
                loopback = parts.hostname == "localhost"
            if not loopback:
                raise ValueError("the issuer must be an https:// URL (http only on loopback)")
        elif parts.scheme != "https" or not parts.hostname:
            raise ValueError("the issuer must be an https:// URL")
        return value

    @field_validator(
        "login_failures_per_network", "login_failures_per_account", "login_failures_per_known_network"
    )
    @classmethod
    def _login_limit(cls, value: str) -> str:
        return check_limit(value)

    @field_validator("metrics_networks", "smtp_trusted_proxies", "spam_trusted_hosts")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        return [str(ipaddress.ip_network(v.strip(), strict=False)) for v in value]

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.mode == "production" and self.secret_key.get_secret_value() in KNOWN_DEFAULT_SECRETS - {""}:
            raise ValueError("secret_key is a well-known default; set a real one (or mode=development)")
        return self

    @model_validator(mode="after")
    def _ldap_transport(self) -> Settings:
        """Passwords go to the directory over TLS, or in clear only to this machine."""
        url = self.ldap_url
        if url is None or not url.startswith("ldap://") or self.ldap_starttls or self.ldap_allow_plaintext:
            return self
        import ipaddress
        from urllib.parse import urlsplit

        host = urlsplit(url).hostname or ""
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise ValueError(
                "ldap_url: ldap:// sends passwords in clear: use ldaps://, ldap_starttls, "
                "or ldap_allow_plaintext (loopback hosts need none of them)"
            )
        return self

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'mailroom.db').resolve()}"

    @property
    def effective_blob_dir(self) -> Path:
        return self.blob_dir if self.blob_dir is not None else self.data_dir / "blobs"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls, env_settings))

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data, with every secret masked."""
        data = self.model_dump(mode="json")
        for key in ("secret_key",):
            data[key] = "**********" if self.secret_key.get_secret_value() else ""
        if self.database_url and "@" in self.database_url:
            data["database_url"] = _mask_url(self.database_url)
        if self.redis_url and "@" in self.redis_url:
            data["redis_url"] = _mask_url(self.redis_url)
        if self.metrics_token is not None:
            data["metrics_token"] = "**********"
        if self.ldap_bind_password is not None:
            data["ldap_bind_password"] = "**********"
        if self.oidc_client_secret is not None:
            data["oidc_client_secret"] = "**********"
        for route in data.get("providers", []):
            if route.get("credentials"):
                route["credentials"] = "**********"
        return data


def _mask_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:****@{host}"


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the TOML file named by ``config``/``MAILROOM_CONFIG`` or found in the data folder."""

    def __init__(self, settings_cls: type[BaseSettings], env: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._env = env

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        current = self.current_state
        env = self._env()
        path = current.get("config") or env.get("config")
        required = path is not None
        if path is None:
            data_dir = current.get("data_dir") or env.get("data_dir") or "data"
            path = Path(data_dir) / "mailroom.toml"
        path = Path(path)
        if not path.exists():
            if required:
                raise FileNotFoundError(f"configuration file {path} does not exist")
            return {}
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        mailroom_table = data.get("mailroom", data)
        return dict(mailroom_table)


def load_settings(**overrides: Any) -> Settings:
    """Build the settings once: CLI flags (``overrides``) > environment > TOML > defaults."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)
