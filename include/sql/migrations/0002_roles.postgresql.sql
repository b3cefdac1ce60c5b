-- 0002_roles (PostgreSQL only): a loader role that writes and an analyst role that only
-- reads. Roles are cluster-wide, so creation is guarded (another database of the same
-- cluster may have created them, possibly at this very moment: duplicate errors are ignored).
-- Give a person a login with a role:  CREATE ROLE alice LOGIN PASSWORD '...' IN ROLE dealer_feed_analyst;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dealer_feed_loader') THEN
        BEGIN
            CREATE ROLE dealer_feed_loader NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dealer_feed_analyst') THEN
        BEGIN
            CREATE ROLE dealer_feed_analyst NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO dealer_feed_loader, dealer_feed_analyst;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO dealer_feed_loader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO dealer_feed_analyst;
-- Tables and views created later by the migrating role get the same grants.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO dealer_feed_loader;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO dealer_feed_analyst;
-- The analyst must not write: no write grant, and nothing inherited from PUBLIC.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public FROM dealer_feed_analyst;
