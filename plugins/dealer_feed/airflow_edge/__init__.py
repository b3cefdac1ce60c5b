"""Airflow at the edge: everything that imports Airflow (the DAG factory, the failure
callbacks and alerts, the hooks that turn Airflow connections into clients and engines).
The steps themselves (`dealer_feed.pipeline`) run without it."""
