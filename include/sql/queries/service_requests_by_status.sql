-- Service requests of one dealer group per dealer and status (make demo's summary, the
-- analyst_refresh DAG, README's example). Parameter: dealer_group (bound by name).
SELECT dealer_id, status, COUNT(*) AS service_requests
FROM service_requests
WHERE dealer_group = :dealer_group
GROUP BY dealer_id, status
ORDER BY dealer_id, status
