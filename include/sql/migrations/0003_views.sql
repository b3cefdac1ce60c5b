-- 0003_views: analyst views that read the same on SQLite and PostgreSQL (the date
-- arithmetic they need is in the views of 0003_dates.{sqlite,postgresql}.sql, which run
-- first). Documented in docs/WAREHOUSE.md. "Now" for a group is its last applied run's logical time (never the
-- wall clock), so a view answers the same after a backfill as after one-by-one runs.

DROP VIEW IF EXISTS v_stock_client_changes;
CREATE VIEW v_stock_client_changes AS
SELECT e.dealer_group,
       e.dealer_id,
       e.sr_id,
       e.vin,
       e.run_id,
       e.event_at AS changed_at,
       e.old_stock_number,
       e.new_stock_number,
       e.old_client,
       e.new_client,
       CASE WHEN COALESCE(e.old_stock_number, '') <> COALESCE(e.new_stock_number, '') THEN 1 ELSE 0 END AS stock_number_changed,
       CASE WHEN COALESCE(e.old_client, '') <> COALESCE(e.new_client, '') THEN 1 ELSE 0 END AS client_changed
FROM service_request_events e
WHERE e.kind = 'updated';

DROP VIEW IF EXISTS v_feed_churn;
CREATE VIEW v_feed_churn AS
WITH dealer_runs AS (
    SELECT d.dealer_group, d.dealer_id, d.run_id, d.logical_time,
           LAG(d.run_id) OVER (PARTITION BY d.dealer_group, d.dealer_id ORDER BY d.logical_time) AS previous_run_id,
           LAG(d.logical_time) OVER (PARTITION BY d.dealer_group, d.dealer_id ORDER BY d.logical_time) AS previous_logical_time
    FROM etl_run_dealers d
    WHERE d.dataset = 'vehicles' AND d.status = 'ok'
)
SELECT r.dealer_group,
       r.dealer_id,
       r.run_id,
       r.logical_time,
       r.previous_run_id,
       (SELECT COUNT(*) FROM feed_vehicles f WHERE f.run_id = r.run_id AND f.dealer_id = r.dealer_id) AS vehicles,
       (SELECT COUNT(*) FROM feed_vehicles f
         WHERE f.run_id = r.run_id AND f.dealer_id = r.dealer_id
           AND NOT EXISTS (SELECT 1 FROM feed_vehicles p
                           WHERE p.run_id = r.previous_run_id AND p.dealer_id = r.dealer_id AND p.vin = f.vin)) AS arrived,
       (SELECT COUNT(*) FROM feed_vehicles p
         WHERE p.run_id = r.previous_run_id AND p.dealer_id = r.dealer_id
           AND NOT EXISTS (SELECT 1 FROM feed_vehicles f
                           WHERE f.run_id = r.run_id AND f.dealer_id = r.dealer_id AND f.vin = p.vin)) AS departed,
       (SELECT COUNT(*) FROM feed_vehicles f
         WHERE f.run_id = r.run_id AND f.dealer_id = r.dealer_id
           AND NOT EXISTS (SELECT 1 FROM feed_vehicles p
                           WHERE p.run_id = r.previous_run_id AND p.dealer_id = r.dealer_id AND p.vin = f.vin)
           AND EXISTS (SELECT 1 FROM feed_vehicles e
                       WHERE e.dealer_group = r.dealer_group AND e.dealer_id = r.dealer_id AND e.vin = f.vin
                         AND e.logical_time < r.previous_logical_time)) AS returned
FROM dealer_runs r;

DROP VIEW IF EXISTS v_run_history;
CREATE VIEW v_run_history AS
SELECT r.dealer_group,
       r.run_id,
       r.logical_time,
       r.status,
       r.airflow_run_id,
       r.started_at,
       r.load_started_at,
       r.loaded_at,
       r.run_seconds,
       r.load_seconds,
       r.dealers_ok,
       r.dealers_failed,
       r.vehicles_seen,
       r.sr_created,
       r.sr_updated,
       r.sr_anchor_reset,
       r.sr_auto_closed,
       r.vehicles_unchanged,
       r.vehicles_ignored,
       r.quarantined,
       (SELECT COUNT(*) FROM service_request_events e WHERE e.run_id = r.run_id) AS events
FROM etl_runs r;

DROP VIEW IF EXISTS v_open_service_requests_by_age;
CREATE VIEW v_open_service_requests_by_age AS
WITH banded AS (
    SELECT dealer_group, dealer_id, as_of, created_at, age_days,
           CASE WHEN age_days < 7 THEN 1 WHEN age_days < 30 THEN 2 WHEN age_days < 90 THEN 3 ELSE 4 END AS age_band_order
    FROM v_active_request_ages
)
SELECT dealer_group,
       dealer_id,
       as_of,
       age_band_order,
       CASE age_band_order WHEN 1 THEN '0-6 days' WHEN 2 THEN '7-29 days' WHEN 3 THEN '30-89 days'
            ELSE '90+ days' END AS age_band,
       COUNT(*) AS open_requests,
       MIN(created_at) AS oldest_created_at,
       MAX(age_days) AS max_age_days,
       AVG(age_days) AS mean_age_days
FROM banded
GROUP BY dealer_group, dealer_id, as_of, age_band_order;

DROP VIEW IF EXISTS v_auto_closes_per_day;
CREATE VIEW v_auto_closes_per_day AS
SELECT dealer_group, dealer_id, close_day, close_reason, COUNT(*) AS auto_closed
FROM v_auto_close_events
GROUP BY dealer_group, dealer_id, close_day, close_reason;
