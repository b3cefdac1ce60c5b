"""Airflow DAG of dealer group `large`: include/dealer_groups/large.yaml (built by dealer_feed.airflow_edge.dag_factory)."""

from dealer_feed.airflow_edge.dag_factory import build_dag

dag = build_dag("large")
