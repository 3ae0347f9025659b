"""Service settings, from the environment or a ``.env`` file. The one place settings live."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.campaign import DEFAULT_CAMPAIGN_FILE

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "changethis"}


class SmtpSecurity(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    #: where the embedded default keeps its database, outbox and uploads
    data_dir: Path = Field(default=Path("var"), validation_alias="JINGONG_DATA_DIR")
    #: where uploaded files live (unset: data_dir/uploads); with several instances, a folder every
    #: instance mounts (NFS or similar). An S3-compatible store is not built.
    uploads_dir_setting: Path | None = Field(default=None, validation_alias="UPLOADS_DIR")
    #: SQLite file under data_dir unless set (postgresql://user@host/db for the scale-out path)
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    campaign_file: Path = Field(default=DEFAULT_CAMPAIGN_FILE, validation_alias="JINGONG_CAMPAIGN")

    # Mail. No SMTP_HOST: mails stay in the outbox and are written as .eml files.
    smtp_host: str | None = Field(default=None, validation_alias="SMTP_HOST")
    smtp_port: int = Field(default=25, validation_alias="SMTP_PORT")
    smtp_username: str | None = Field(default=None, validation_alias="SMTP_USERNAME")
    smtp_password: str | None = Field(default=None, validation_alias="SMTP_PASSWORD")
    smtp_security: SmtpSecurity = Field(default=SmtpSecurity.NONE, validation_alias="SMTP_SECURITY")
    smtp_timeout: float = Field(default=30.0, validation_alias="SMTP_TIMEOUT")
    mail_from: str = Field(
        default="津工精匠评选组委会办公室 <noreply@jingong.local>", validation_alias="MAIL_FROM"
    )
    mail_outbox_dir: Path | None = Field(default=None, validation_alias="MAIL_OUTBOX_DIR")
    #: outbox sender: first retry after this many seconds, doubling up to the maximum
    mail_retry_base_seconds: float = Field(default=60.0, ge=0, validation_alias="MAIL_RETRY_BASE_SECONDS")
    mail_retry_max_seconds: float = Field(default=3600.0, ge=0, validation_alias="MAIL_RETRY_MAX_SECONDS")
    #: after this many temporary failures a mail is marked failed
    mail_max_attempts: int = Field(default=10, ge=1, validation_alias="MAIL_MAX_ATTEMPTS")
    #: a mail claimed ("sending") longer than this by a sender that died is taken over
    mail_lease_seconds: float = Field(default=300.0, ge=0, validation_alias="MAIL_LEASE_SECONDS")
    mail_batch_size: int = Field(default=100, ge=1, validation_alias="MAIL_BATCH_SIZE")
    #: how often the background sender looks at the outbox when nothing wakes it
    mail_poll_seconds: float = Field(default=10.0, gt=0, validation_alias="MAIL_POLL_SECONDS")

    # HTTP
    public_base_url: str = Field(default="http://127.0.0.1:8000", validation_alias="PUBLIC_BASE_URL")
    secret_key: str | None = Field(default=None, validation_alias="SECRET_KEY")
    admin_username: str = Field(default="admin", validation_alias="ADMIN_USERNAME")
    admin_password: str | None = Field(default=None, validation_alias="ADMIN_PASSWORD")
    #: a committee login ends this long after it began, however busy (the absolute timeout)
    session_max_age_seconds: int = Field(default=8 * 3600, ge=60, validation_alias="SESSION_MAX_AGE")
    #: ... and after this long without a request (the idle timeout)
    session_idle_seconds: int = Field(default=30 * 60, ge=60, validation_alias="SESSION_IDLE_SECONDS")
    upload_max_bytes: int = Field(default=50 * 1024 * 1024, validation_alias="UPLOAD_MAX_BYTES")
    photo_max_bytes: int = Field(default=5 * 1024 * 1024, validation_alias="PHOTO_MAX_BYTES")
    #: the reverse proxies whose X-Forwarded-For is trusted: addresses or networks, comma-separated
    #: ("10.0.0.5, 10.1.0.0/24"); the client is the right-most address no trusted proxy added.
    #: Unset: the header is ignored (the peer is the client)
    forwarded_allow_ips: str | None = Field(default=None, validation_alias="FORWARDED_ALLOW_IPS")
    #: what several app instances share (rate limits, the public pages' version); unset: kept in
    #: this process / this data folder (the embedded default, one instance). redis://host:6379/0
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    #: the start of every key this deployment keeps in Redis (several deployments may share one)
    redis_prefix: str = Field(default="jingong:", validation_alias="REDIS_PREFIX")
    #: the longest a cached public page is served before it is rendered again (pages that show the
    #: time or live counts lag by at most this); every committee or scheduler act shows at once
    page_cache_seconds: float = Field(default=1.0, ge=0, le=60, validation_alias="PAGE_CACHE_SECONDS")
    #: the same for public pages that show neither the time nor live counts (every act and every
    #: scheduler step shows at once; this only bounds a stage edge passed with no scheduler running)
    page_cache_quiet_seconds: float = Field(default=30.0, ge=0, le=600, validation_alias="PAGE_CACHE_QUIET_SECONDS")
    #: how long a request that only reads waits for a slot before it is answered 503 + Retry-After
    admission_read_wait_seconds: float = Field(default=5.0, gt=0, validation_alias="ADMISSION_READ_WAIT_SECONDS")
    #: the same for requests that may write: longer, so a deadline rush of a thousand submissions
    #: queues to the end (its last waits ~15 s, see the deadline rush) instead of being turned away
    admission_write_wait_seconds: float = Field(default=30.0, gt=0, validation_alias="ADMISSION_WRITE_WAIT_SECONDS")

    # Committee login. Failures and locks are kept on the account row (shared by every instance);
    # the per-address limit is shared by every instance through REDIS_URL (unset: counted in each
    # instance); 0 turns it off.
    login_max_failures: int = Field(default=5, ge=1, validation_alias="LOGIN_MAX_FAILURES")
    #: the first lock; each further lock without a successful login in between doubles it
    login_lock_seconds: int = Field(default=15 * 60, ge=1, validation_alias="LOGIN_LOCK_SECONDS")
    login_lock_max_seconds: int = Field(default=24 * 3600, ge=1, validation_alias="LOGIN_LOCK_MAX_SECONDS")
    login_rate_per_address_minute: int = Field(default=30, ge=0, validation_alias="LOGIN_RATE_PER_ADDRESS_MINUTE")
    #: password checks (argon2, memory- and CPU-hard) running at once in one instance
    login_verify_concurrency: int = Field(default=2, ge=1, validation_alias="LOGIN_VERIFY_CONCURRENCY")

    # Scheduler
    # Voting. Rate limits are shared by every app instance through REDIS_URL (unset: counted in
    # each instance; Redis down: each instance counts alone until it answers); 0 turns one off.
    vote_rate_per_address_minute: int = Field(default=120, ge=0, validation_alias="VOTE_RATE_PER_ADDRESS_MINUTE")
    vote_rate_per_voter_minute: int = Field(default=30, ge=0, validation_alias="VOTE_RATE_PER_VOTER_MINUTE")
    vote_code_ttl_seconds: int = Field(default=600, ge=30, validation_alias="VOTE_CODE_TTL_SECONDS")
    #: seconds between two codes to one address
    vote_code_interval_seconds: int = Field(default=60, ge=0, validation_alias="VOTE_CODE_INTERVAL_SECONDS")
    #: "console" (prints and appends to data_dir/sms.log) or "package.module:factory" for a provider
    sms_gateway: str = Field(default="console", validation_alias="SMS_GATEWAY")
    #: how long a voter stays signed in after verifying
    voter_session_seconds: int = Field(default=7 * 86400, ge=60, validation_alias="VOTER_SESSION_SECONDS")

    scheduler_enabled: bool = Field(default=True, validation_alias="SCHEDULER_ENABLED")
    scheduler_safety_interval_seconds: int = Field(default=30, validation_alias="SCHEDULER_SAFETY_INTERVAL")

    @field_validator("secret_key")
    @classmethod
    def _no_placeholder(cls, value: str | None) -> str | None:
        if value is not None and value.strip().lower() in PLACEHOLDER_SECRETS:
            raise ValueError("SECRET_KEY is a placeholder; set a long random value or leave it unset")
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _networks(cls, value: str | None) -> str | None:
        for item in (value or "").split(","):
            item = item.strip()
            if item and item != "*":
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise ValueError(f"FORWARDED_ALLOW_IPS: {item!r} is no address or network "
                                     "(e.g. 10.0.0.5 or 10.0.0.0/24)") from None
        return value

    @model_validator(mode="after")
    def _derive(self) -> Settings:
        if self.mail_outbox_dir is None:
            self.mail_outbox_dir = self.data_dir / "outbox"
        return self

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'jingong.db').as_posix()}"

    @property
    def uploads_dir(self) -> Path:
        return self.uploads_dir_setting or self.data_dir / "uploads"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
