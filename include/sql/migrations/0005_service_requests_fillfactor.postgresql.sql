-- 0005_service_requests_fillfactor (PostgreSQL): every run rewrites the row of every service
-- request whose vehicle is present (last_seen_at moves), ~one row per feed vehicle. With full
-- pages each new row version goes to another page and into all five indexes; with room left
-- on the page PostgreSQL updates in place (HOT: no index entries, a fraction of the WAL) when
-- no indexed column changes, which is every update but a close. bench/bench_growth.py measured
-- the load growing faster than the feed without it (issue 13, part 4). Storage only: no row
-- changes. New pages follow it; an existing table's pages do after a rewrite (VACUUM FULL).
ALTER TABLE service_requests SET (fillfactor = 80);
