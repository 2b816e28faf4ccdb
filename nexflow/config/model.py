"""The typed configuration model. Every option is documented in ``config.example.yml``."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nexflow.config.section import _Section
from nexflow.config.web import WebConfig, WebhooksConfig

__all__ = ["WebConfig", "WebhooksConfig"]  # and everything defined below


class ModelProfile(_Section):
    model: str
    # auto: the native Ollama client for "ollama/...", a supervised llama.cpp server for
    # "local/...", the built-in OpenAI-compatible client for "openai/..." with an api_base,
    # litellm for everything else; "litellm", "openai" or "ollama" force one (docs/llm.md).
    client: Literal["auto", "litellm", "openai", "ollama"] = "auto"
    api_base: str | None = None
    api_key: SecretStr | None = None
    timeout_s: float = Field(60.0, gt=0)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    # Provider-specific model options; the Ollama client sends them as "options"
    # (num_ctx, top_k, seed, ...).
    options: dict[str, Any] = Field(default_factory=dict)


class RetryConfig(_Section):
    attempts: int = Field(3, ge=1, le=10)
    initial_backoff_s: float = Field(0.5, ge=0)
    max_backoff_s: float = Field(8.0, ge=0)


class BreakerConfig(_Section):
    """Per-profile circuit breaker: open after ``failures`` consecutive failed calls, skip
    the profile for ``cooldown_s``, then let one probe call through (half-open)."""

    failures: int = Field(3, ge=1, le=100)
    cooldown_s: float = Field(30.0, gt=0)


class OllamaConfig(_Section):
    base_url: str = "http://127.0.0.1:11434"
    model: str | None = None
    probe: bool = True


class SizeRoute(_Section):
    """Send a prompt whose estimated size is above (or below) a threshold to ``profile``."""

    profile: str
    above_tokens: int | None = Field(None, ge=0)
    below_tokens: int | None = Field(None, ge=1)
    routes: list[str] = Field(default_factory=list)  # empty: every route

    @model_validator(mode="after")
    def _one_threshold(self) -> SizeRoute:
        if (self.above_tokens is None) == (self.below_tokens is None):
            raise ValueError("a size route needs exactly one of above_tokens or below_tokens")
        return self


class ResponseCacheConfig(_Section):
    """Identical non-streaming requests on these routes are answered from the cache: this
    process's LRU on one gateway, shared by replicas on Postgres storage (Redis when
    ``redis.url`` is set, else a Postgres table; ``max_entries`` is not counted on Redis,
    where entries leave by their TTL)."""

    routes: list[str] = Field(default_factory=list)  # empty: the cache is off
    ttl_s: float = Field(600.0, gt=0)
    max_entries: int = Field(1_000, ge=1)


class LocalModelConfig(_Section):
    """The llama.cpp server Nexflow starts for ``local/...`` profiles (extra ``local``)."""

    n_ctx: int = Field(4096, ge=128)
    threads: int | None = Field(None, ge=1)
    start_timeout_s: float = Field(120.0, gt=0)
    args: list[str] = Field(default_factory=list)  # more `python -m llama_cpp.server` flags


class LLMConfig(_Section):
    models: dict[str, ModelProfile] = Field(default_factory=dict)
    routes: dict[str, str] = Field(default_factory=dict)
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    size_routes: list[SizeRoute] = Field(default_factory=list)
    cache: ResponseCacheConfig = ResponseCacheConfig()
    ollama: OllamaConfig = OllamaConfig()
    local: LocalModelConfig = LocalModelConfig()
    retry: RetryConfig = RetryConfig()
    breaker: BreakerConfig = BreakerConfig()
    stream: bool = True

    @model_validator(mode="after")
    def _routes_name_profiles(self) -> LLMConfig:
        for route, profile in self.routes.items():
            if profile not in self.models:
                known = ", ".join(sorted(self.models)) or "none defined"
                raise ValueError(
                    f"route {route!r} names model profile {profile!r}, which is not in "
                    f"llm.models ({known})"
                )
        for primary, chain in self.fallbacks.items():
            for profile in (primary, *chain):
                if profile not in self.models:
                    raise ValueError(
                        f"llm.fallbacks.{primary} names model profile {profile!r}, which is "
                        "not in llm.models"
                    )
        for index, rule in enumerate(self.size_routes):
            if rule.profile not in self.models:
                raise ValueError(
                    f"llm.size_routes[{index}] names model profile {rule.profile!r}, which is "
                    "not in llm.models"
                )
        return self


class BudgetsConfig(_Section):
    """Token ("Nexflow token") budgets; None means unlimited. Days and months are UTC."""

    per_user_daily_tokens: int | None = Field(None, ge=0)
    per_user_monthly_tokens: int | None = Field(None, ge=0)
    background_daily_tokens: int | None = Field(None, ge=0)
    soft_warning_ratio: float = Field(0.8, gt=0, le=1)
    # What one fired reminder costs against the background budget (it makes no LLM call,
    # but a runaway cron job must still stop).
    background_fire_tokens: int = Field(100, ge=0)
    # The completion share of a model call's reservation when its profile sets no
    # max_tokens (the budget gate reserves prompt estimate + this before it sends).
    default_reserve_tokens: int = Field(1024, ge=1)


class AgentConfig(_Section):
    max_steps: int = Field(8, ge=1, le=64)
    history_messages: int = Field(40, ge=0)
    system_prompt: str = ""
    tool_output_chars: int = Field(8_000, ge=100)


class BusConfig(_Section):
    concurrency: int = Field(32, ge=1, le=1024)
    max_pending: int = Field(1_000, ge=1)
    # A turn started this many times without finishing (it crashed the gateway or raised
    # each time) becomes a dead letter: its sender is told, nothing replays it by itself.
    max_attempts: int = Field(3, ge=1, le=100)


class RateLimitConfig(_Section):
    per_minute: float = Field(30.0, gt=0)
    burst: int = Field(10, ge=1)


STORAGE_SCHEMES = ("sqlite:///", "postgresql://", "postgres://")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def _redacted(url: str) -> str:
    from nexflow.storage.engine import redact

    return redact(url)


class StorageConfig(_Section):
    """Where the gateway's database lives (docs/scale-out.md).

    ``url`` names the engine: ``sqlite:///PATH`` (one file, one gateway) or
    ``postgresql://user:password@host:port/db`` (several replicas share it). Null: the
    SQLite file ``path`` (default ``<home>/nexflow.db``); with a Postgres ``url`` set,
    ``path`` still names the SQLite file ``nexflow migrate sqlite-to-postgres`` reads.
    """

    url: str | None = None
    path: Path | None = None
    busy_timeout_ms: int = Field(5_000, ge=0)  # SQLite: wait this long for a write lock
    # Postgres: connections (one per worker thread) this process opens. 1 keeps each
    # gateway's writes in order; replicas scale out, not threads (storage/engine.py).
    threads: int = Field(1, ge=1, le=64)

    @field_validator("url", mode="after")
    @classmethod
    def _scheme(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value.startswith(STORAGE_SCHEMES):
            raise ValueError(
                f"storage.url {_redacted(value)!r} names no engine Nexflow runs on: write "
                "sqlite:///PATH (a file; sqlite:////abs/path for an absolute one) or "
                "postgresql://user:password@host:5432/db"
            )
        if value == "sqlite:///":
            raise ValueError("storage.url sqlite:/// needs a file path after the third slash")
        return value

    @field_validator("path", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None


class RedisConfig(_Section):
    """An optional Redis for what is ephemeral and shared between replicas (rate limits,
    circuit breakers, the LLM response cache, the event bus). Null: Postgres carries them
    (one gateway on SQLite: they stay in process)."""

    url: str | None = None  # redis://[:password@]host:6379/0, rediss:// (TLS), unix://

    @field_validator("url", mode="after")
    @classmethod
    def _scheme(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value.startswith(REDIS_SCHEMES):
            raise ValueError(
                f"redis.url {_redacted(value)!r}: write redis://host:6379/0, rediss:// for "
                "TLS or unix:///path/to/redis.sock"
            )
        return value


class OutboxConfig(_Section):
    max_attempts: int = Field(12, ge=1)
    initial_backoff_s: float = Field(1.0, gt=0)
    max_backoff_s: float = Field(300.0, gt=0)


class ReplicasConfig(_Section):
    """Timings of several gateways on one Postgres (docs/scale-out.md "Replicas"); a
    gateway on SQLite reads none of them."""

    lease_ttl_s: float = Field(6.0, gt=0, le=600)  # a session lease lives this long unrenewed
    renew_s: float = Field(2.0, gt=0, le=300)  # held leases are renewed this often
    sweep_s: float = Field(1.0, gt=0, le=60)  # look for sessions nobody holds this often
    outbox_claim_s: float = Field(30.0, gt=0, le=3600)  # a claim on due outbox rows
    presence_s: float = Field(10.0, gt=0, le=600)  # stream relays announce their sockets
    bucket_prune_s: float = Field(60.0, ge=0, le=86400)  # drop idle rate buckets; 0: never
    # Reminder and flow-trigger schedulers look in the shared job tables this often, for
    # jobs other processes added: the most a reminder added elsewhere is late.
    scheduler_wake_s: float = Field(5.0, gt=0, le=300)

    @model_validator(mode="after")
    def _renew_under_ttl(self) -> ReplicasConfig:
        # A lease is also reused without asking the board for half its TTL: renewing
        # later than that lets it lapse whenever one renewal is a little late.
        if self.renew_s > self.lease_ttl_s / 2:
            raise ValueError(
                f"replicas.renew_s ({self.renew_s:g}) must be at most half of "
                f"replicas.lease_ttl_s ({self.lease_ttl_s:g}): a lease renewed later "
                "expires whenever one renewal is late, and another replica takes the "
                "session over in the middle of a turn"
            )
        return self


ChannelPolicy = Literal["pairing", "allowlist", "open", "disabled"]


class ChannelAccess(_Section):
    policy: ChannelPolicy = "pairing"
    allow: list[str] = Field(default_factory=list)


class SecurityConfig(_Section):
    owner: dict[str, list[str]] = Field(default_factory=dict)
    channels: dict[str, ChannelAccess] = Field(default_factory=dict)


class PanelLimitsConfig(_Section):
    """Sandbox limits for one handler run or binding batch (see docs/panels.md)."""

    fuel: int = Field(1_000_000_000, ge=1_000_000)
    memory_mb: int = Field(64, ge=8, le=2047)
    wall_time_ms: int = Field(1_000, ge=10, le=60_000)


class PanelsConfig(_Section):
    workspace: str = Field("main", pattern=r"^[A-Za-z0-9_-]{1,24}$")
    templates_dir: Path | None = None
    index: str | None = None  # like skills.index, for `nexflow panels install <slug>`
    cache_dir: Path | None = None
    limits: PanelLimitsConfig = PanelLimitsConfig()
    template_limits: dict[str, PanelLimitsConfig] = Field(default_factory=dict)
    grants: dict[str, list[str]] = Field(default_factory=dict)
    mcp: bool = True
    # Every server-monitor panel gets the host's CPU load and the gateway's log lines this
    # often (seconds); 0 turns the feed off.
    host_feed_s: float = Field(15.0, ge=0)


class WorkspacesConfig(_Section):
    """Git workspaces, AI patches and explicit sync (docs/workspaces.md)."""

    # Directory of the repositories (default <home>/workspaces): <root>/<user>/<name>/.
    root: Path | None = None
    default_name: str = Field("default", pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    # Quotas (seed: subscription dimensions); refused with a clear message when reached.
    max_workspaces: int = Field(5, ge=1)  # per user
    max_panels: int = Field(50, ge=1)  # per workspace (panels the user owns)
    max_bytes: int = Field(50_000_000, ge=1_000)  # files on main, per workspace
    max_file_bytes: int = Field(1_000_000, ge=100)  # one file or panel file in a patch
    max_pending_patches: int = Field(100, ge=1)  # per workspace
    # The llm.routes entry sync asks (a cheap model); a route missing from llm.routes
    # falls back to "summarize" when that is routed, else to "execute".
    sync_route: str = "sync"
    sync_reply_tokens: int = Field(2_000, ge=100)  # the answer's share of the reservation
    sync_max_changes: int = Field(10, ge=1, le=50)  # patches one sync may create
    # Git (docs/workspaces.md, "Git timeouts and maintenance"): a git process or object
    # read still running after this many seconds is killed and its operation fails.
    git_timeout_s: float = Field(30.0, gt=0)
    # Count a repository's loose objects on its first commit after a start and then
    # every this many commits; 0: never ...
    gc_every_commits: int = Field(200, ge=0)
    # ... and pack it (git gc) when it has more new loose objects than this (a mirror
    # commit writes ~4, each a file of 4 KB or more on disk).
    gc_loose_objects: int = Field(1000, ge=0)


Permission = Literal["shell", "filesystem", "network", "secrets"]
ALL_PERMISSIONS: list[Permission] = ["shell", "filesystem", "network", "secrets"]


class PermissionsConfig(_Section):
    """What each role (and, on top, each user id) may let skills do."""

    roles: dict[str, list[Permission]] = Field(
        default_factory=lambda: {"owner": list(ALL_PERMISSIONS), "user": []}
    )
    users: dict[str, list[Permission]] = Field(default_factory=dict)

    def granted(self, role: str, user_id: str | None) -> frozenset[str]:
        extra = self.users.get(user_id or "", [])
        return frozenset([*self.roles.get(role, []), *extra])


class SkillsConfig(_Section):
    dirs: list[Path] = Field(default_factory=list)
    prompt_budget_chars: int = Field(1_000, ge=0)
    dangerous: list[str] = Field(default_factory=list)
    isolation: Literal["auto", "bwrap", "namespaces", "none"] = "auto"
    watch: bool = True
    secrets: dict[str, list[str]] = Field(default_factory=dict)
    confirm_timeout_s: float = Field(300.0, gt=0)
    # An index of installable skills (a JSON file or URL with each skill's files and
    # sha256): what `nexflow skills install <slug>` looks slugs up in. None is contacted
    # unless set (also NEXFLOW_SKILLS_INDEX).
    index: str | None = None
    # Skills switched off by name (GraphStudio's dashboard, or by hand): loaded and listed
    # with the reason, never offered to the model or run. Applies without a restart.
    disabled: list[str] = Field(default_factory=list)
    # Where a chat turn's run_skill spawns the program: "gateway" (this process) or
    # "workers" (the gateway checks permissions, asks and audits, then a `nexflow worker`
    # runs it from a durable queue on Postgres; docs/skills.md, docs/scale-out.md).
    run_on: Literal["gateway", "workers"] = "gateway"


class MemoryConfig(_Section):
    """Long-term memory (docs/memory.md): Markdown notes indexed in SQLite."""

    enabled: bool = True
    # none: keyword (BM25) search only; provider: hybrid with embeddings from a profile;
    # local: hybrid with a model run in process (extra embed-local, installed by make run);
    # auto: provider when an embedding profile is named, else local when its extra is
    # installed, else none.
    embedder: Literal["auto", "none", "provider", "local"] = "auto"
    # The llm.models profile to embed with (default: llm.routes.embedding).
    profile: str | None = None
    # Embedding model name, overriding the profile's model (e.g. text-embedding-3-small).
    # For local: multilingual-e5-small (the default: Russian, English and ~100 more
    # languages, extra embed-local), all-MiniLM-L6-v2 (English only, with torch: extra
    # embed-torch), or the absolute path of a sentence-transformers folder (torch too).
    model: str | None = None
    # Vector width to ask the provider for; null takes what it returns.
    dimensions: int | None = Field(None, ge=1, le=8192)
    path: Path | None = None  # the index database (default <home>/memory.db)
    # Context paging (docs/memory.md#context-paging): the estimated tokens a session's
    # history may take in the prompt (recent turns + summaries of paged-out pages + pages
    # paged back in). Older turns are paged out to memory.db, never deleted.
    paging: bool = True  # false: the last agent.history_messages messages, as before
    context_budget_tokens: int = Field(8000, ge=100)
    page_in_max: int = Field(2, ge=0, le=10)  # pages restored in full per turn, at most
    # Cosine similarity a page needs to be paged in by its vector (a keyword hit also does).
    page_in_min_similarity: float = Field(0.5, ge=-1.0, le=1.0)
    # A message shorter than this (stripped) is not embedded for page-in: "hi", "ok",
    # "thanks" carry no topic to match; the keyword search still runs. 0: always embed.
    page_in_embed_min_chars: int = Field(12, ge=0)
    # Per-user files in the prompt (RULES.md, USER.md, skill hints, MEMORY.md, recent notes);
    # each file is cut at this many characters.
    prompt_file_chars: int = Field(2000, ge=0)


_MCP_SERVER_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9-]|_(?!_|$)){0,23}"


class McpServerConfig(_Section):
    """One MCP server Nexflow connects to (docs/mcp.md): ``command`` (stdio) or ``url``
    (streamable HTTP). ``allow`` names the roles and user ids whose turns may use it."""

    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)  # on top of a minimal safe environment
    cwd: Path | None = None
    url: str | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)  # write ${VAR} for secrets
    description: str = Field("", max_length=200)  # the one line the prompt shows
    allow: list[str] = Field(default_factory=lambda: ["owner"])
    timeout_s: float = Field(30.0, gt=0)  # one tool call
    startup_timeout_s: float = Field(30.0, gt=0)  # start, handshake and tool listing
    max_concurrency: int = Field(4, ge=1, le=64)  # calls in flight to this server

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError("an MCP server needs exactly one of command (stdio) or url (HTTP)")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("an MCP server url starts with http:// or https://")
        if self.url is None and self.headers:
            raise ValueError("headers are for an HTTP server (url); a command gets env")
        return self


class McpConfig(_Section):
    """MCP servers whose tools the model may use (``<server>__<tool>``, docs/mcp.md)."""

    servers: dict[str, McpServerConfig] = Field(default_factory=dict)

    @field_validator("servers", mode="after")
    @classmethod
    def _names(cls, value: dict[str, McpServerConfig]) -> dict[str, McpServerConfig]:
        for name in value:
            if not re.fullmatch(_MCP_SERVER_NAME, name):
                raise ValueError(
                    f"MCP server name {name!r}: use up to 24 letters, digits, '-' or single "
                    "'_' (its tools reach the model as <server>__<tool>)"
                )
        return value


class FlowsConfig(_Section):
    """Flows on the durable engine (docs/flows.md, "In the gateway")."""

    enabled: bool = True
    # Stable across restarts: DBOS resumes a killed gateway's runs only for the same id.
    # null: derived from the Nexflow home (``FlowsConfig.executor_for``).
    executor_id: str | None = None
    # DBOS's system database. null: the gateway's Postgres database when storage.url is
    # Postgres (DBOS keeps its tables in a schema of its own, "dbos"), else
    # sqlite:///<home>/flows.sqlite3.
    database_url: str | None = None
    concurrency: int = Field(4, ge=1, le=256)  # runs at once, all users
    # runs at once per user (capped at `concurrency`); null: only the global limit
    per_user_concurrency: int | None = Field(2, ge=1, le=256)
    # a cron fire missed while the gateway was down runs on start if at most this late
    trigger_grace_s: float = Field(3600.0, ge=0, le=7 * 86400)
    queue_poll_s: float = Field(0.2, gt=0, le=60)
    max_threads: int = Field(32, ge=2, le=1024)
    default_budget_tokens: int | None = Field(None, ge=1)  # for flows without budget_tokens
    # Where runs execute: "gateway" (this process dequeues and runs them: one machine) or
    # "workers" (gateways only enqueue; `nexflow worker` processes on the same Postgres
    # dequeue and run them; docs/scale-out.md, "Workers").
    run_on: Literal["gateway", "workers"] = "gateway"
    # How often a worker looks for runs of executors that died and never came back (their
    # liveness lock is free) and hands them to the queue again; 0 turns the sweeper off.
    sweep_s: float = Field(15.0, ge=0, le=3600)

    def executor_for(self, home: Path) -> str:
        if self.executor_id:
            return self.executor_id
        digest = hashlib.sha256(str(home.expanduser().resolve()).encode()).hexdigest()
        return f"nexflow-{digest[:12]}"

    def database_for(self, home: Path, storage_url: str | None = None) -> str:
        """DBOS's system database: ``database_url``, else the gateway's own Postgres
        database (``storage_url``), else a SQLite file in ``home``."""
        if self.database_url:
            return self.database_url
        if storage_url is not None and storage_url.startswith(("postgresql://", "postgres://")):
            return storage_url
        return f"sqlite:///{(home / 'flows.sqlite3').resolve()}"


class LoggingConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"


class NexflowConfig(BaseSettings):
    """The whole configuration. YAML values are overridden by ``NEXFLOW_<SECTION>__<KEY>``.

    Build it with :func:`nexflow.config.load_config`, which decides where values come from.
    """

    model_config = SettingsConfigDict(
        env_prefix="NEXFLOW_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    home: Path = Path("~/.nexflow")
    workspace: Path | None = None
    secrets_file: Path | None = None
    web: WebConfig = WebConfig()
    llm: LLMConfig = LLMConfig()
    budgets: BudgetsConfig = BudgetsConfig()
    agent: AgentConfig = AgentConfig()
    bus: BusConfig = BusConfig()
    rate_limit: RateLimitConfig = RateLimitConfig()
    storage: StorageConfig = StorageConfig()
    redis: RedisConfig = RedisConfig()
    outbox: OutboxConfig = OutboxConfig()
    replicas: ReplicasConfig = ReplicasConfig()
    security: SecurityConfig = SecurityConfig()
    permissions: PermissionsConfig = PermissionsConfig()
    skills: SkillsConfig = SkillsConfig()
    logging: LoggingConfig = LoggingConfig()
    panels: PanelsConfig = PanelsConfig()
    workspaces: WorkspacesConfig = WorkspacesConfig()
    memory: MemoryConfig = MemoryConfig()
    webhooks: WebhooksConfig = WebhooksConfig()
    mcp: McpConfig = McpConfig()
    flows: FlowsConfig = FlowsConfig()
    connectors: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("home", "workspace", "secrets_file", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @model_validator(mode="after")
    def _skills_on_workers(self) -> NexflowConfig:
        """``skills.run_on: workers`` hands runs over the flow engine's Postgres queue."""
        if self.skills.run_on != "workers":
            return self
        if not self.uses_postgres:
            raise ValueError(
                "skills.run_on: workers needs storage on Postgres (storage.url = "
                "postgresql://…): the gateway and its workers share the skill queue there"
            )
        if not self.flows.enabled or self.flows.run_on != "workers":
            raise ValueError(
                "skills.run_on: workers needs flows.enabled and flows.run_on: workers: skill "
                "runs go through the flow engine's queues, and a gateway that runs flows "
                "itself would dequeue them too"
            )
        return self

    @property
    def workspace_dir(self) -> Path:
        return self.workspace or self.home / "workspace"

    @property
    def database_path(self) -> Path:
        """The SQLite file: ``storage.url``'s when it names one, else ``storage.path``
        (default ``<home>/nexflow.db``; with Postgres, the file a migration reads)."""
        url = self.storage.url
        if url is not None and url.startswith("sqlite:///"):
            return Path(url.removeprefix("sqlite:///")).expanduser()
        return self.storage.path or self.home / "nexflow.db"

    @property
    def storage_url(self) -> str:
        """The gateway database's URL (``storage.url``, default the SQLite file)."""
        return self.storage.url or f"sqlite:///{self.database_path.resolve()}"

    @property
    def uses_postgres(self) -> bool:
        return self.storage_url.startswith(("postgresql://", "postgres://"))

    @property
    def flows_database_url(self) -> str:
        """DBOS's system database (see :meth:`FlowsConfig.database_for`)."""
        return self.flows.database_for(self.home, self.storage_url)

    @property
    def memory_path(self) -> Path:
        return self.memory.path or self.home / "memory.db"
