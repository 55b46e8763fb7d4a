"""The relational model: observatories (API keys), alerts, raw uploads, jobs and follow-up data.

The job row is the source of truth for a calibration's state; the queue only moves work.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Double,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class JobState(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


def _uuid() -> str:
    return uuid.uuid4().hex


class Observatory(Base):
    """A telescope with its API key ("hashtag"), stored only as a salted, peppered HMAC."""

    __tablename__ = "observatories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    lon: Mapped[float] = mapped_column(Double)
    lat: Mapped[float] = mapped_column(Double)
    filters: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list)
    key_prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_salt: Mapped[str] = mapped_column(String(64))
    key_hash: Mapped[str] = mapped_column(String(128))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    #: Raised by a logout: login cookies issued under an older generation stop working.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Alert(Base):
    """A transient alert that observers follow up (Gaia Science Alerts style)."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ivorn: Mapped[str] = mapped_column(String(300), unique=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    ra: Mapped[float] = mapped_column(Double)
    dec: Mapped[float] = mapped_column(Double)
    url: Mapped[str | None] = mapped_column(Text)
    alert_mag: Mapped[float | None] = mapped_column(Double)
    classification: Mapped[str | None] = mapped_column(String(200))
    published: Mapped[str | None] = mapped_column(String(40))
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # --- migration 0004: discovery date (Gaia list); points_version is bumped by a
    # trigger on followups and keys the light-curve caches
    discovered: Mapped[str | None] = mapped_column(String(40))
    points_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    points_changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # --- end migration 0004
    #: The TNS name without its prefix (`2016dbs`): how a TNS export and a Gaia alert meet.
    tns_name: Mapped[str | None] = mapped_column(String(40))
    #: The feed URL that keeps this alert (`feeds.sync`); None for alerts added by hand.
    feed: Mapped[str | None] = mapped_column(Text)

    followups: Mapped[list[Followup]] = relationship(back_populates="alert")


# Uploads name alerts case-insensitively (`Gaia16aye` or `gaia16aye`).
Index("ix_alerts_lower_name", func.lower(Alert.name))
Index("uq_alerts_tns_name", Alert.tns_name, unique=True)


class AlertFeed(Base):
    """The latest sync of an alert feed (`feeds.sync`), read by /healthz and /metrics."""

    __tablename__ = "alert_feeds"

    url: Mapped[str] = mapped_column(Text, primary_key=True)
    kind: Mapped[str | None] = mapped_column(String(16))  # gaia | tns
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: Why the latest attempt failed; None when it succeeded.
    last_error: Mapped[str | None] = mapped_column(Text)
    #: Failed attempts since the last success.
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: The latest successful read: its alerts, and what it changed.
    alerts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    added: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    removed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: `line N: why` of the rows it could not read (the first few).
    rejected: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default="[]")
    rejected_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Upload(Base):
    """A raw catalogue exactly as uploaded, stored on disk under a server-made name."""

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    original_name: Mapped[str | None] = mapped_column(String(300))
    path: Mapped[str] = mapped_column(Text)  # its key in the store (blobstore.keys.upload_key)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Job(Base):
    """One calibration request; `idempotency_key` makes an identical re-upload return this job."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_uuid)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    observatory_id: Mapped[int] = mapped_column(ForeignKey("observatories.id"), index=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    upload_id: Mapped[int] = mapped_column(ForeignKey("uploads.id"))
    params: Mapped[dict] = mapped_column(JSONB)
    state: Mapped[JobState] = mapped_column(
        Enum(JobState, name="job_state"), default=JobState.queued, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict | None] = mapped_column(JSONB)
    image_path: Mapped[str | None] = mapped_column(Text)  # the plot's key in the store
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: Stamped by the worker while the job runs (`db.job_states.beat`); a running job whose
    #: heartbeat is older than STALE_JOB_SECONDS has lost its worker and is re-sent.
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: The name the file was sent under (the upload row is shared by every job of its bytes).
    file_name: Mapped[str | None] = mapped_column(String(300))

    observatory: Mapped[Observatory] = relationship()
    alert: Mapped[Alert] = relationship()
    upload: Mapped[Upload] = relationship()
    followup: Mapped[Followup | None] = relationship(back_populates="job")


# An observatory's jobs, newest first (`GET /jobs`, db.job_list).
Index("ix_jobs_observatory_created", Job.observatory_id, Job.created_at)


class Followup(Base):
    """A calibrated photometric point (or upper limit) of an alert: one per successful job.

    Its result columns are `calib.schema.FOLLOWUP_COLUMNS`."""

    __tablename__ = "followups"
    __table_args__ = (UniqueConstraint("job_id", name="uq_followups_job"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"))
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    observatory_id: Mapped[int] = mapped_column(ForeignKey("observatories.id"), index=True)
    mjd: Mapped[float] = mapped_column(Double, index=True)
    exptime: Mapped[float | None] = mapped_column(Double)
    survey: Mapped[str] = mapped_column(String(64))
    filter: Mapped[str] = mapped_column(String(32))
    mag: Mapped[float] = mapped_column(Double)
    mag_err: Mapped[float] = mapped_column(Double)
    is_limit: Mapped[bool] = mapped_column(Boolean)
    limiting_mag: Mapped[float | None] = mapped_column(Double)
    zeropoint: Mapped[float] = mapped_column(Double)
    zeropoint_err: Mapped[float] = mapped_column(Double)
    zeropoint_order: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    npoints: Mapped[int] = mapped_column(Integer)
    scatter: Mapped[float | None] = mapped_column(Double)
    target_flags: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default="[]")
    warnings: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default="[]")
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # --- migration 0004: withdrawn or superseded points leave light curves and lists
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    superseded_by: Mapped[int | None] = mapped_column(
        ForeignKey("followups.id", ondelete="SET NULL", name="fk_followups_superseded_by")
    )
    # --- end migration 0004

    job: Mapped[Job] = relationship(back_populates="followup")
    alert: Mapped[Alert] = relationship(back_populates="followups")
    observatory: Mapped[Observatory] = relationship()


class InstrumentModel(Base):
    """What an (observatory, filter)'s frames say about its instrument, rebuilt from its current
    follow-up points after each one (`calib.instrument.InstrumentModel` has the meaning of each
    column; `db.instrument` stores it)."""

    __tablename__ = "instrument_models"

    observatory_id: Mapped[int] = mapped_column(
        ForeignKey("observatories.id", ondelete="CASCADE"), primary_key=True
    )
    filter: Mapped[str] = mapped_column(String(32), primary_key=True)
    n_frames: Mapped[int] = mapped_column(Integer)
    first_mjd: Mapped[float] = mapped_column(Double)
    last_mjd: Mapped[float] = mapped_column(Double)
    reference_mjd: Mapped[float] = mapped_column(Double)
    colour_term: Mapped[float | None] = mapped_column(Double)
    colour_term_err: Mapped[float | None] = mapped_column(Double)
    colour_term_scatter: Mapped[float | None] = mapped_column(Double)
    n_colour_frames: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    zeropoint_median: Mapped[float] = mapped_column(Double)
    zeropoint_scatter: Mapped[float] = mapped_column(Double)
    zeropoint_trend: Mapped[float] = mapped_column(Double)  # mag per year
    exptime_scaling: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    exptime_ref: Mapped[float | None] = mapped_column(Double)
    depth_median: Mapped[float | None] = mapped_column(Double)
    depth_scatter: Mapped[float | None] = mapped_column(Double)
    fwhm_median: Mapped[float | None] = mapped_column(Double)
    fwhm_scatter: Mapped[float | None] = mapped_column(Double)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


# An instrument's frames, newest first: the model's rebuild and the observatory page read them.
Index("ix_followups_observatory_filter_mjd", Followup.observatory_id, Followup.filter, Followup.mjd)
