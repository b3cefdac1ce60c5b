"""Airflow DAG of dealer group `demo`: include/dealer_groups/demo.yaml (built by dealer_feed.airflow_edge.dag_factory)."""

from dealer_feed.airflow_edge.dag_factory import build_dag

dag = build_dag("demo")
