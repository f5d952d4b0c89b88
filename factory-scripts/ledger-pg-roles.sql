-- ledger-pg-roles.sql — the database roles of a central fuseline ledger on
-- PostgreSQL (README "PostgreSQL ledger").
--
-- Run it once, after the ledger exists (the first `fuseline` command that
-- records, run as the ledger's owner, creates the schema), connected to the
-- ledger's database as its owner (who needs CREATEROLE) or a superuser:
--   psql -v ON_ERROR_STOP=1 -d fuseline -f ledger-pg-roles.sql
-- It may be run again (after a schema upgrade, say): it only adds what is
-- missing and repeats the grants.
--
--   fuseline_station  appends: SELECT on the ledger's tables; events only
--                     through the procedure fuseline_append_event (EXECUTE,
--                     no INSERT on events: the procedure refuses a row
--                     unless the caller holds the chain lock and the row
--                     continues the chain); INSERT on devices, certificates,
--                     checkpoints (and forwarded); UPDATE only of a device's
--                     mutable columns and of a certificate's status; no
--                     UPDATE/DELETE/TRUNCATE of events, certificates or
--                     checkpoints (the triggers refuse those even to the
--                     owner)
--   fuseline_mes      reads: SELECT only
-- Both are group roles (NOLOGIN): give each station and each MES client its
-- own login role in one of them, e.g.
--   CREATE ROLE station_l1s1 LOGIN IN ROLE fuseline_station;
-- and its password in that machine's ~/.pgpass (or use certificate
-- authentication in pg_hba.conf); never put a password in the ledger URI.

DO $fl$
BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fuseline_station') THEN
                CREATE ROLE fuseline_station NOLOGIN;
        END IF;
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fuseline_mes') THEN
                CREATE ROLE fuseline_mes NOLOGIN;
        END IF;
        IF to_regclass('fuseline_ledger') IS NULL THEN
                RAISE EXCEPTION 'no fuseline ledger in schema %: create it first (run a recording fuseline command '
                                'as the owner)', current_schema();
        END IF;
        IF to_regprocedure('fuseline_append_event(bigint, text, text, text, text, text, text, bigint, text, '
                           'text, bytea, bytea)') IS NULL THEN
                RAISE EXCEPTION 'the ledger in schema % has no fuseline_append_event procedure: open it for writing '
                                'once as its owner with a fuseline that installs it, then run this again',
                                current_schema();
        END IF;
        -- The ledger's schema (the first on the search_path, where fuseline
        -- created it). PostgreSQL 13 and 14 let every role create objects
        -- in the public schema: nobody but the owner may (a station's own
        -- function or table next to the ledger's would be a trap).
        EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC', current_schema());
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO fuseline_station, fuseline_mes', current_schema());
END
$fl$;

-- Nothing unless granted below.
REVOKE ALL ON fuseline_ledger, events, events_high_water, devices, certificates, checkpoints
        FROM PUBLIC, fuseline_station, fuseline_mes;

GRANT SELECT ON fuseline_ledger, events, events_high_water, devices, certificates, checkpoints
        TO fuseline_station, fuseline_mes;

-- Events: only through the procedure (an earlier version of this file
-- granted INSERT on events; the REVOKE ALL above takes it back).
GRANT INSERT ON devices, certificates, checkpoints TO fuseline_station;
REVOKE ALL ON PROCEDURE fuseline_append_event(bigint, text, text, text, text, text, text, bigint, text, text, bytea,
                                              bytea) FROM PUBLIC, fuseline_mes;
GRANT EXECUTE ON PROCEDURE fuseline_append_event(bigint, text, text, text, text, text, text, bigint, text, text,
                                                 bytea, bytea) TO fuseline_station;
-- Store and forward (schema 3): a station's `ledger sync` records each upload.
DO $fl$
BEGIN
        IF to_regclass('forwarded') IS NOT NULL THEN
                REVOKE ALL ON forwarded, spool_uploaded FROM PUBLIC, fuseline_station, fuseline_mes;
                GRANT SELECT ON forwarded, spool_uploaded TO fuseline_station, fuseline_mes;
                GRANT INSERT ON forwarded TO fuseline_station;
        END IF;
END
$fl$;
GRANT UPDATE (chip, module, serial, state, last_seen) ON devices TO fuseline_station;
GRANT UPDATE (status) ON certificates TO fuseline_station;
