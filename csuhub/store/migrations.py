"""Versioned schema migrations. Append only: never edit a released step.

This module is longer than 450 lines because it is the schema's history: one
append-only list of every step since the first release, which must not be
split or rewritten once a database has applied it.

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


MIGRATIONS.append(
    (
        4,
        "retention: holds, sweeps and their journal, destruction register, requisitions",
        """
        -- segments.hold is now the strongest active hold over the segment:
        -- 0 none, 1 preservation (incident, manual: wins over the retention period,
        -- not over the legal cap), 2 legal (a judicial requisition: wins over both).
        -- sweep_id is the deletion journal: a row marked by a sweep is destroyed by
        -- it (file unlinked, then row deleted); start-up recovery finishes the job.
        ALTER TABLE segments ADD COLUMN sweep_id INTEGER;
        ALTER TABLE segments ADD COLUMN sweep_policy TEXT;
        CREATE INDEX segments_sweep ON segments(sweep_id) WHERE sweep_id IS NOT NULL;
        CREATE INDEX segments_start ON segments(start);
        CREATE TABLE holds (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            camera_id   TEXT NOT NULL,
            start       REAL NOT NULL,
            end         REAL NOT NULL,
            level       INTEGER NOT NULL,
            kind        TEXT NOT NULL,
            ref         TEXT NOT NULL,
            reason      TEXT NOT NULL DEFAULT '',
            created_at  REAL NOT NULL,
            created_by  TEXT NOT NULL,
            released_at REAL,
            released_by TEXT,
            alerted_at  REAL
        );
        CREATE INDEX holds_active ON holds(camera_id, start) WHERE released_at IS NULL;
        CREATE INDEX holds_ref ON holds(kind, ref);
        CREATE TABLE sweeps (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            started_at  REAL NOT NULL,
            finished_at REAL,
            state       TEXT NOT NULL DEFAULT 'running',
            origin      TEXT NOT NULL DEFAULT 'hub',
            segments    INTEGER NOT NULL DEFAULT 0,
            bytes       INTEGER NOT NULL DEFAULT 0
        );
        -- The destruction register: per camera, footage day and policy, what was
        -- destroyed and when; counts and ranges, never one line per file.
        CREATE TABLE destructions (
            id            INTEGER PRIMARY KEY AUTOINCREMENT,
            camera_id     TEXT NOT NULL,
            day           TEXT NOT NULL,
            policy        TEXT NOT NULL,
            segments      INTEGER NOT NULL,
            bytes         INTEGER NOT NULL,
            seconds       REAL NOT NULL,
            footage_start REAL NOT NULL,
            footage_end   REAL NOT NULL,
            first_destroyed_at REAL NOT NULL,
            last_destroyed_at  REAL NOT NULL,
            UNIQUE(camera_id, day, policy)
        );
        CREATE INDEX destructions_range ON destructions(camera_id, footage_start);
        CREATE TRIGGER destructions_no_delete BEFORE DELETE ON destructions
        BEGIN SELECT RAISE(ABORT, 'the destruction register is append-only'); END;
        CREATE TABLE requisitions (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            reference   TEXT NOT NULL UNIQUE,
            service     TEXT NOT NULL,
            officer     TEXT NOT NULL,
            legal_frame TEXT NOT NULL,
            reason      TEXT NOT NULL,
            start       REAL NOT NULL,
            end         REAL NOT NULL,
            cameras     TEXT NOT NULL,
            status      TEXT NOT NULL,
            outcome     TEXT,
            scope       TEXT NOT NULL DEFAULT '{}',
            created_at  REAL NOT NULL,
            created_by  TEXT NOT NULL,
            updated_at  REAL NOT NULL,
            delivered_to TEXT,
            closed_at   REAL
        );
        CREATE INDEX requisitions_created ON requisitions(created_at);
        -- The extraction register: every export, with what it holds.
        CREATE TABLE extractions (
            id             INTEGER PRIMARY KEY AUTOINCREMENT,
            requisition_id INTEGER REFERENCES requisitions(id),
            camera_id      TEXT NOT NULL,
            start          REAL NOT NULL,
            end            REAL NOT NULL,
            seconds        REAL NOT NULL,
            file           TEXT NOT NULL,
            sha256         TEXT NOT NULL,
            size           INTEGER NOT NULL,
            created_at     REAL NOT NULL,
            created_by     TEXT NOT NULL
        );
        CREATE INDEX extractions_requisition ON extractions(requisition_id);
        CREATE TRIGGER extractions_no_delete BEFORE DELETE ON extractions
        BEGIN SELECT RAISE(ABORT, 'the extraction register is append-only'); END;
        -- Incidents as far as retention needs them (the call-line issue owns the rest):
        -- footage of these cameras over [start, end] is preserved while open.
        CREATE TABLE incidents (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            reference  TEXT NOT NULL,
            title      TEXT NOT NULL DEFAULT '',
            cameras    TEXT NOT NULL,
            start      REAL NOT NULL,
            end        REAL,
            opened_at  REAL NOT NULL,
            closed_at  REAL
        );
        """,
    )
)
MIGRATIONS.append(
    (
        5,
        "retention: footage a sweep kept past its expiry because a hold hook failed or vetoed",
        """
        -- The other half of the destruction register: expired footage a sweep did NOT
        -- destroy because a retention_hold plugin vetoed it or failed (fail closed).
        -- One row per sweep, camera and reason; counts and ranges, never per file.
        CREATE TABLE retention_kept (
            id            INTEGER PRIMARY KEY AUTOINCREMENT,
            sweep_id      INTEGER NOT NULL,
            camera_id     TEXT NOT NULL,
            reason        TEXT NOT NULL,
            failure       INTEGER NOT NULL DEFAULT 0,
            segments      INTEGER NOT NULL,
            footage_start REAL NOT NULL,
            footage_end   REAL NOT NULL,
            kept_at       REAL NOT NULL
        );
        CREATE INDEX retention_kept_sweep ON retention_kept(sweep_id);
        CREATE TRIGGER retention_kept_no_delete BEFORE DELETE ON retention_kept
        BEGIN SELECT RAISE(ABORT, 'the destruction register is append-only'); END;
        CREATE TRIGGER retention_kept_no_update BEFORE UPDATE ON retention_kept
        BEGIN SELECT RAISE(ABORT, 'the destruction register is append-only'); END;
        """,
    )
)

MIGRATIONS.append(
    (
        6,
        "cameras: what the device says it is (maker, model, firmware, serial, profiles)",
        """
        -- Read from the camera by its driver at each connection (describe()) and
        -- kept for the register: which device was adopted, and what it offers.
        ALTER TABLE cameras ADD COLUMN device TEXT NOT NULL DEFAULT '{}';
        """,
    )
)

MIGRATIONS.append(
    (
        7,
        "audit: who, through what, from where, why, with what outcome; a SHA-256 chain",
        """
        -- Each entry names the role it acted under, the session or token it came
        -- through, the client address, the stated reason and the outcome, and the
        -- entry it concludes (an action audited when it starts, then when it ends).
        -- prev_hash/hash chain the entries (csuhub/audit/chain.py and docs/audit.md
        -- say how); entries written before this step are chained once, in id
        -- order, by the first entry written after it (csuhub/store/audit.py).
        ALTER TABLE audit_log ADD COLUMN role TEXT;
        ALTER TABLE audit_log ADD COLUMN via TEXT;
        ALTER TABLE audit_log ADD COLUMN source TEXT;
        ALTER TABLE audit_log ADD COLUMN reason TEXT;
        ALTER TABLE audit_log ADD COLUMN outcome TEXT NOT NULL DEFAULT 'ok';
        ALTER TABLE audit_log ADD COLUMN ref INTEGER;
        ALTER TABLE audit_log ADD COLUMN class TEXT NOT NULL DEFAULT 'admin';
        ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
        ALTER TABLE audit_log ADD COLUMN hash TEXT;
        CREATE INDEX audit_log_action ON audit_log(action, ts);
        """,
    )
)

MIGRATIONS.append(
    (
        8,
        "people and service accounts, sessions, login lockout, privacy masks and their lifts",
        """
        -- A person logs in with a password (argon2id); a service account (a CAD
        -- system, a kiosk) only holds tokens. Roles and camera scope are JSON lists:
        -- roles name permission sets (csuhub/security/permissions.py); scope lists
        -- camera selectors ("*", "district:X", "group:Y", "camera:Z", "wall:W").
        -- An empty scope sees no camera: rights are granted, never assumed.
        CREATE TABLE users (
            id                  INTEGER PRIMARY KEY AUTOINCREMENT,
            name                TEXT NOT NULL UNIQUE,
            kind                TEXT NOT NULL DEFAULT 'person'
                                CHECK (kind IN ('person', 'service')),
            roles               TEXT NOT NULL DEFAULT '[]',
            scope               TEXT NOT NULL DEFAULT '[]',
            password_hash       TEXT,
            password_changed_at REAL,
            must_change         INTEGER NOT NULL DEFAULT 0,
            created_at          REAL NOT NULL,
            updated_at          REAL NOT NULL,
            disabled_at         REAL
        );
        -- Tokens now belong to a user or service account; the tokens made before
        -- people existed each become a service account of the same role.
        ALTER TABLE api_tokens ADD COLUMN user_id INTEGER REFERENCES users(id);
        INSERT INTO users(name, kind, roles, scope, created_at, updated_at)
            SELECT 'token:' || name, 'service', json_array(role), '["*"]', created_at, created_at
            FROM api_tokens;
        UPDATE api_tokens
            SET user_id = (SELECT id FROM users WHERE users.name = 'token:' || api_tokens.name);

        -- Server-side browser sessions. The cookie carries a secret; only its
        -- SHA-256 is kept (id). public_id names the session in the audit.
        CREATE TABLE sessions (
            id          TEXT PRIMARY KEY,
            public_id   TEXT NOT NULL UNIQUE,
            user_id     INTEGER NOT NULL REFERENCES users(id),
            csrf        TEXT NOT NULL,
            source      TEXT,
            user_agent  TEXT,
            created_at  REAL NOT NULL,
            last_seen   REAL NOT NULL,
            ended_at    REAL,
            end_reason  TEXT
        );
        CREATE INDEX sessions_user ON sessions(user_id, ended_at);

        -- Failed logins, per account ("user:<name>") and per client address
        -- ("addr:<ip>"): the lock grows with each failure past the threshold.
        CREATE TABLE login_failures (
            key           TEXT PRIMARY KEY,
            failures      INTEGER NOT NULL,
            last_failure  REAL NOT NULL,
            locked_until  REAL NOT NULL DEFAULT 0
        );

        -- Privacy masks drawn through the API (the site file declares the others).
        -- Polygons are JSON [[x, y], ...] in coordinates normalised to 0..1.
        -- A removed mask keeps its row: which masks applied when is evidence.
        CREATE TABLE privacy_masks (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            camera_id   TEXT NOT NULL,
            name        TEXT NOT NULL,
            polygon     TEXT NOT NULL,
            created_by  TEXT NOT NULL,
            created_at  REAL NOT NULL,
            removed_by  TEXT,
            removed_at  REAL
        );
        CREATE INDEX privacy_masks_camera ON privacy_masks(camera_id, removed_at);

        -- Lifting a mask takes two people: one requests with a reason, another
        -- approves; the lift is temporary. status: requested, approved, refused,
        -- expired, ended.
        CREATE TABLE mask_lifts (
            id             INTEGER PRIMARY KEY AUTOINCREMENT,
            camera_id      TEXT NOT NULL,
            reason         TEXT NOT NULL,
            requisition_id INTEGER REFERENCES requisitions(id),
            status         TEXT NOT NULL,
            requested_by   TEXT NOT NULL,
            requested_at   REAL NOT NULL,
            duration_s     REAL NOT NULL,
            decided_by     TEXT,
            decided_at     REAL,
            expires_at     REAL,
            ended_at       REAL
        );
        CREATE INDEX mask_lifts_camera ON mask_lifts(camera_id, status);
        """,
    )
)


MIGRATIONS.append(
    (
        9,
        "audit trail indexes for its newest-first searches by actor, action and target; "
        "a version per camera of its footage records",
        """
        -- The audit is searched newest first (by id). An index on a column alone
        -- keeps each value's entries in id order, so the newest of an action or a
        -- target are read without sorting them all (a common action's newest
        -- entry took a second over 1M entries); the actor had no index at all (a
        -- rare actor's search read the whole trail). The (column, ts) indexes
        -- still serve searches over a period.
        CREATE INDEX audit_log_actor ON audit_log(actor, ts);
        CREATE INDEX audit_log_action_id ON audit_log(action);
        CREATE INDEX audit_log_target_id ON audit_log(target);

        -- Each write to a camera's footage records (segments, gaps, destructions,
        -- its register entry) counts up its version in the writer's transaction,
        -- whichever process writes: a kept timeline stays good while its camera's
        -- version does, through other cameras' writes (csuhub.web.cache).
        CREATE TABLE footage_versions (camera_id TEXT PRIMARY KEY, version INTEGER NOT NULL)
            WITHOUT ROWID;
        CREATE TRIGGER segments_insert_version AFTER INSERT ON segments BEGIN
            INSERT INTO footage_versions VALUES(NEW.camera_id, 1)
            ON CONFLICT(camera_id) DO UPDATE SET version = version + 1; END;
        CREATE TRIGGER segments_update_version AFTER UPDATE ON segments BEGIN
            INSERT INTO footage_versions VALUES(NEW.camera_id, 1)
            ON CONFLICT(camera_id) DO UPDATE SET version = version + 1;
            UPDATE footage_versions SET version = version + 1
            WHERE camera_id = OLD.camera_id AND OLD.camera_id <> NEW.camera_id; END;
        CREATE TRIGGER segments_delete_version AFTER DELETE ON segments BEGIN
            INSERT INTO footage_versions VALUES(OLD.camera_id, 1)
            ON CONFLICT(camera_id) DO UPDATE SET version = version + 1; END;
        CREATE TRIGGER gaps_insert_version AFTER INSERT ON gaps BEGIN
            INSERT INTO footage_versions VALUES(NEW.camera_id, 1)
            ON CONFLICT(camera_id) DO UPDATE SET version = version + 1; END;
        CREATE TRIGGER gaps_delete_version AFTER DELETE ON gaps BEGIN
            INSERT INTO footage_versions VALUES(OLD.camera_id, 1)
            ON CONFLICT(camera_id) DO UPDATE SET version = version + 1; END;
        CREATE TRIGGER destructions_insert_version AFTER INSERT ON destructions BEGIN
            INSERT INTO footage_versions VALUES(NEW.camera_id, 1)
            ON CONFLICT(camera_id) DO UPDATE SET version = version + 1; END;
        CREATE TRIGGER cameras_insert_version AFTER INSERT ON cameras BEGIN
            INSERT INTO footage_versions VALUES(NEW.id, 1)
            ON CONFLICT(camera_id) DO UPDATE SET version = version + 1; END;
        CREATE TRIGGER cameras_delete_version AFTER DELETE ON cameras BEGIN
            INSERT INTO footage_versions VALUES(OLD.id, 1)
            ON CONFLICT(camera_id) DO UPDATE SET version = version + 1; END;
        """,
    )
)

MIGRATIONS.append(
    (
        10,
        "incidents: source, caller, location, category, priority, status, outcome; "
        "their linked cameras, bookmarks and notes",
        """
        -- The incidents table of step 4 (what retention's incident_preservation reads:
        -- reference, cameras, start, end, closed_at) grows into the incident itself
        -- (csuhub/incidents/, docs/incidents.md). reference is the id as text, so the
        -- hold's reason reads "incident 12" whoever places it; cameras mirrors
        -- incident_cameras and start is where the footage hold begins.
        ALTER TABLE incidents ADD COLUMN source_kind TEXT NOT NULL DEFAULT 'operator';
        ALTER TABLE incidents ADD COLUMN source_line TEXT;
        ALTER TABLE incidents ADD COLUMN call_id TEXT;
        ALTER TABLE incidents ADD COLUMN caller TEXT;
        ALTER TABLE incidents ADD COLUMN lat REAL;
        ALTER TABLE incidents ADD COLUMN lon REAL;
        ALTER TABLE incidents ADD COLUMN radius_m REAL;
        ALTER TABLE incidents ADD COLUMN address TEXT;
        ALTER TABLE incidents ADD COLUMN district TEXT;
        ALTER TABLE incidents ADD COLUMN category TEXT NOT NULL DEFAULT 'incident';
        ALTER TABLE incidents ADD COLUMN priority INTEGER NOT NULL DEFAULT 2;
        ALTER TABLE incidents ADD COLUMN status TEXT NOT NULL DEFAULT 'open';
        ALTER TABLE incidents ADD COLUMN text TEXT NOT NULL DEFAULT '';
        ALTER TABLE incidents ADD COLUMN received_at REAL;
        ALTER TABLE incidents ADD COLUMN updated_at REAL;
        ALTER TABLE incidents ADD COLUMN outcome TEXT;
        ALTER TABLE incidents ADD COLUMN call_state TEXT;
        ALTER TABLE incidents ADD COLUMN opened_by TEXT;
        ALTER TABLE incidents ADD COLUMN closed_by TEXT;
        UPDATE incidents SET
            status = CASE WHEN closed_at IS NULL THEN 'open' ELSE 'closed' END,
            updated_at = COALESCE(closed_at, opened_at),
            received_at = opened_at,
            category = CASE WHEN title <> '' THEN title ELSE 'incident' END;
        -- a call is one incident, however often its line reports it (and whichever
        -- process reports it): the desk checks in its transaction, this is the backstop
        CREATE UNIQUE INDEX incidents_call ON incidents(source_line, call_id)
            WHERE call_id IS NOT NULL;
        CREATE INDEX incidents_opened ON incidents(opened_at);
        CREATE INDEX incidents_open ON incidents(status, updated_at);
        -- the cameras linked to an incident, in the order they were linked (rowid):
        -- nearest first, then those linked later
        CREATE TABLE incident_cameras (
            incident_id INTEGER NOT NULL REFERENCES incidents(id),
            camera_id   TEXT NOT NULL,
            distance_m  REAL,
            reason      TEXT NOT NULL,
            linked_at   REAL NOT NULL,
            linked_by   TEXT NOT NULL,
            UNIQUE(incident_id, camera_id)
        );
        CREATE INDEX incident_cameras_camera ON incident_cameras(camera_id);
        -- a moment of one camera's footage an operator marked during the incident
        CREATE TABLE incident_bookmarks (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            incident_id INTEGER NOT NULL REFERENCES incidents(id),
            camera_id   TEXT NOT NULL,
            time        REAL NOT NULL,
            note        TEXT NOT NULL DEFAULT '',
            created_at  REAL NOT NULL,
            created_by  TEXT NOT NULL
        );
        CREATE INDEX incident_bookmarks_incident ON incident_bookmarks(incident_id);
        CREATE TABLE incident_notes (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            incident_id INTEGER NOT NULL REFERENCES incidents(id),
            text        TEXT NOT NULL,
            created_at  REAL NOT NULL,
            created_by  TEXT NOT NULL
        );
        CREATE INDEX incident_notes_incident ON incident_notes(incident_id);
        """,
    )
)

MIGRATIONS.append(
    (
        11,
        "video walls: each wall's version and waiting incidents, each screen's state",
        """
        -- The walls' live state (csuhub/walls/, docs/walls.md): what each screen
        -- shows now, as the hub's JSON, so that a restart restores the wall. The
        -- site file declares walls and screens; declared is the fingerprint of a
        -- screen's declaration, and a stored state whose declaration changed is
        -- reset to the site file's. version counts every change of the wall.
        CREATE TABLE wall_state (
            wall       TEXT PRIMARY KEY,
            version    INTEGER NOT NULL,
            waiting    TEXT NOT NULL DEFAULT '[]',
            updated_at REAL NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE wall_screens (
            wall       TEXT NOT NULL,
            screen     TEXT NOT NULL,
            declared   TEXT NOT NULL,
            state      TEXT NOT NULL,
            version    INTEGER NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (wall, screen)
        ) WITHOUT ROWID;
        """,
    )
)

MIGRATIONS.append(
    (
        12,
        "incidents: a reused call id opens a new incident (follows), the last report's "
        "time (reported_at), linked cameras in rank order (position)",
        """
        -- A call id is unique among OPEN incidents only: a CAD reusing an external id,
        -- or a SIP Call-ID seen again after a restart, is a new call once its incident
        -- is closed, and opens a new incident that follows the closed one (whose facts
        -- are never changed again). reported_at is the newest received_at of the
        -- reports applied: an older report (a replay, a report overtaken) cannot undo
        -- newer facts (csuhub/incidents/desk.py).
        ALTER TABLE incidents ADD COLUMN follows INTEGER REFERENCES incidents(id);
        ALTER TABLE incidents ADD COLUMN reported_at REAL;
        UPDATE incidents SET reported_at = received_at;
        DROP INDEX incidents_call;
        CREATE UNIQUE INDEX incidents_call ON incidents(source_line, call_id)
            WHERE call_id IS NOT NULL AND status = 'open';
        CREATE INDEX incidents_calls ON incidents(source_line, call_id, id)
            WHERE call_id IS NOT NULL;
        -- the linked cameras' order, nearest first from the incident's current point:
        -- rewritten when a later report moves the incident (rowid kept the first order)
        ALTER TABLE incident_cameras ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
        UPDATE incident_cameras SET position = rowid;
        """,
    )
)

LATEST = MIGRATIONS[-1][0]
