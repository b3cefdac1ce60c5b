-- 0003_views_dates (PostgreSQL): the analyst views that need date arithmetic, which the
-- two dialects spell differently (the twin file has the other spelling; the other views are
-- in 0003_views.sql). Documented in docs/WAREHOUSE.md.

DROP VIEW IF EXISTS v_open_service_requests_by_age;
CREATE VIEW v_open_service_requests_by_age AS
WITH as_of AS (
    SELECT dealer_group, MAX(logical_time) AS as_of FROM etl_runs GROUP BY dealer_group
), aged AS (
    SELECT sr.dealer_group, sr.dealer_id, a.as_of, sr.created_at,
           EXTRACT(EPOCH FROM (a.as_of - sr.created_at)) / 86400.0 AS age_days
    FROM service_requests sr
    JOIN as_of a ON a.dealer_group = sr.dealer_group
    WHERE sr.status = 'active'
)
SELECT dealer_group,
       dealer_id,
       as_of,
       CASE WHEN age_days < 7 THEN 1 WHEN age_days < 30 THEN 2 WHEN age_days < 90 THEN 3 ELSE 4 END AS age_band_order,
       CASE WHEN age_days < 7 THEN '0-6 days' WHEN age_days < 30 THEN '7-29 days'
            WHEN age_days < 90 THEN '30-89 days' ELSE '90+ days' END AS age_band,
       COUNT(*) AS open_requests,
       MIN(created_at) AS oldest_created_at,
       MAX(age_days) AS max_age_days,
       AVG(age_days) AS mean_age_days
FROM aged
GROUP BY dealer_group, dealer_id, as_of,
         CASE WHEN age_days < 7 THEN 1 WHEN age_days < 30 THEN 2 WHEN age_days < 90 THEN 3 ELSE 4 END,
         CASE WHEN age_days < 7 THEN '0-6 days' WHEN age_days < 30 THEN '7-29 days'
              WHEN age_days < 90 THEN '30-89 days' ELSE '90+ days' END;

DROP VIEW IF EXISTS v_auto_closes_per_day;
CREATE VIEW v_auto_closes_per_day AS
SELECT e.dealer_group,
       e.dealer_id,
       CAST(e.event_at AS DATE) AS close_day,
       e.reason AS close_reason,
       COUNT(*) AS auto_closed
FROM service_request_events e
WHERE e.kind = 'auto_closed'
GROUP BY e.dealer_group, e.dealer_id, CAST(e.event_at AS DATE), e.reason;

-- Views are tables to GRANT: the analyst reads them, the loader does not need them.
GRANT SELECT ON v_open_service_requests_by_age, v_auto_closes_per_day, v_stock_client_changes, v_feed_churn, v_run_history TO dealer_feed_analyst;
