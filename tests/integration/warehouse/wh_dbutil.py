"""Small helpers for warehouse tests: content hashes and quick queries."""

from __future__ import annotations

from sqlalchemy import Engine, text

from support import TABLES, table_hash, table_hashes  # noqa: F401 - shared with the DAG tests


def rows(engine: Engine, sql: str, **params) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params).all()]


def scalar(engine: Engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def count(engine: Engine, table: str) -> int:
    return scalar(engine, f"SELECT COUNT(*) FROM {table}")


def add_children(engine: Engine, sr_id: str, group: str, stock: str, client: str) -> None:
    """An inspection and a work order created from service request `sr_id` (as downstream systems do)."""
    from dealer_feed.warehouse._frames import ts_param
    from wh_frames import T0

    with engine.begin() as conn:
        for table, key in (("inspections", "inspection_id"), ("work_orders", "work_order_id")):
            conn.execute(
                text(f"INSERT INTO {table} ({key}, sr_id, dealer_group, stock_number, client, created_at) "
                     "VALUES (:id, :sr, :g, :s, :c, :t)"),
                {"id": f"{table}-{sr_id}", "sr": sr_id, "g": group, "s": stock, "c": client, "t": ts_param(conn, T0)},
            )
