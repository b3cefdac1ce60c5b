-- 0003_dates (SQLite): the only date arithmetic in the schema, which the two dialects
-- spell differently (the twin file has the other spelling). Two small building-block
-- views; the analyst views built on them are dialect-free, in 0003_views.sql.

DROP VIEW IF EXISTS v_active_request_ages;
CREATE VIEW v_active_request_ages AS
WITH as_of AS (
    SELECT dealer_group, MAX(logical_time) AS as_of FROM etl_runs GROUP BY dealer_group
)
SELECT sr.dealer_group, sr.dealer_id, sr.sr_id, a.as_of, sr.created_at,
       julianday(a.as_of) - julianday(sr.created_at) AS age_days
FROM service_requests sr
JOIN as_of a ON a.dealer_group = sr.dealer_group
WHERE sr.status = 'active';

DROP VIEW IF EXISTS v_auto_close_events;
CREATE VIEW v_auto_close_events AS
SELECT e.dealer_group, e.dealer_id, e.sr_id, date(e.event_at) AS close_day, e.reason AS close_reason
FROM service_request_events e
WHERE e.kind = 'auto_closed';
