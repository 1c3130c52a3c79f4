"""Versioned schema migrations. Append only: never edit a released step.

``PRAGMA user_version`` holds the applied version; each step runs in its own
transaction, so a crash mid-migration leaves the previous version intact.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "audit trail, API tokens, cameras, key-value metadata",
        """
        CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        -- Accountability: who did what to which object, when and why.
        -- Append-only by convention and by trigger.
        CREATE TABLE audit_log (
            id       INTEGER PRIMARY KEY AUTOINCREMENT,
            ts       REAL    NOT NULL,
            actor    TEXT    NOT NULL,
            action   TEXT    NOT NULL,
            target   TEXT,
            details  TEXT    NOT NULL DEFAULT '{}'
        );
        CREATE INDEX audit_log_ts ON audit_log(ts);
        CREATE INDEX audit_log_target ON audit_log(target, ts);
        CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
        CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

        -- API tokens: only a SHA-256 of the secret is kept.
        CREATE TABLE api_tokens (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            name        TEXT NOT NULL UNIQUE,
            role        TEXT NOT NULL,
            secret_hash TEXT NOT NULL UNIQUE,
            created_at  REAL NOT NULL,
            revoked_at  REAL
        );

        CREATE TABLE cameras (
            id          TEXT PRIMARY KEY,
            name        TEXT NOT NULL,
            driver      TEXT NOT NULL,
            ref         TEXT UNIQUE,
            address     TEXT,
            state       TEXT NOT NULL,
            state_reason TEXT NOT NULL DEFAULT '',
            info        TEXT NOT NULL DEFAULT '{}',
            created_at  REAL NOT NULL,
            updated_at  REAL NOT NULL
        );
        """,
    ),
]

MIGRATIONS.append(
    (
        2,
        "camera register: origin, adoption, location, prefectoral authorisation",
        """
        ALTER TABLE cameras ADD COLUMN origin TEXT NOT NULL DEFAULT 'config';
        ALTER TABLE cameras ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE cameras ADD COLUMN location TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE cameras ADD COLUMN authorization_ref TEXT;
        ALTER TABLE cameras ADD COLUMN authorization_issued TEXT;
        ALTER TABLE cameras ADD COLUMN authorization_expires TEXT;
        ALTER TABLE cameras ADD COLUMN authorization_status TEXT NOT NULL DEFAULT 'missing';
        ALTER TABLE cameras ADD COLUMN adopted_at REAL;
        ALTER TABLE cameras ADD COLUMN adopted_by TEXT;
        ALTER TABLE cameras ADD COLUMN last_seen REAL;
        CREATE INDEX cameras_state ON cameras(state);
        """,
    )
)

MIGRATIONS.append(
    (
        3,
        "segment index and gaps",
        """
        -- One row per recorded file. Times are UTC epoch seconds; path is
        -- relative to the storage root. status: ok | damaged | missing.
        CREATE TABLE segments (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            camera_id   TEXT NOT NULL,
            start       REAL NOT NULL,
            end         REAL NOT NULL,
            duration    REAL NOT NULL,
            size        INTEGER NOT NULL,
            path        TEXT NOT NULL UNIQUE,
            sha256      TEXT,
            status      TEXT NOT NULL DEFAULT 'ok',
            hold        INTEGER NOT NULL DEFAULT 0,
            hold_reason TEXT,
            indexed_at  REAL NOT NULL
        );
        CREATE INDEX segments_camera_start ON segments(camera_id, start);
        CREATE INDEX segments_camera_end ON segments(camera_id, end);
        -- Every second not recorded, and why (camera offline, ffmpeg restart, hub down...).
        CREATE TABLE gaps (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            camera_id  TEXT NOT NULL,
            start      REAL NOT NULL,
            end        REAL NOT NULL,
            reason     TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE INDEX gaps_camera_start ON gaps(camera_id, start);
        """,
    )
)

LATEST = MIGRATIONS[-1][0]
