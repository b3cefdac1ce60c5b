"""Airflow DAG of dealer group `large`: include/dealer_groups/large.yaml (built by dealer_feed.dag_factory)."""

from dealer_feed.dag_factory import build_dag

dag = build_dag("large")
