"""DAG integrity: every group file gives one DAG, every DAG file imports, every task retries."""

from airflow.dag_processing.dagbag import DagBag

from dealer_feed.config import group_files
from support import ROOT


def load_bag() -> DagBag:
    return DagBag(dag_folder=str(ROOT / "dags"))


def test_no_import_errors_and_one_dag_per_group_file():
    bag = load_bag()
    assert bag.import_errors == {}
    group_dags = {d for d in bag.dag_ids if d.startswith("dealer_feed_")}
    assert group_dags == {f"dealer_feed_{p.stem}" for p in group_files()}


def test_every_group_file_has_its_dag_stub():
    for path in group_files():
        stub = ROOT / "dags" / f"dealer_feed_{path.stem}.py"
        assert stub.exists(), f"add {stub.relative_to(ROOT)} for {path.name} (copy dags/dealer_feed_demo.py)"


def test_tasks_have_retries_timeouts_and_shape():
    bag = load_bag()
    for dag in bag.dags.values():
        assert dag.max_active_runs == 1 or not dag.dag_id.startswith("dealer_feed_")
        for t in dag.tasks:
            if t.task_id == "watcher":
                assert t.retries == 0 and t.trigger_rule == "one_failed"
                continue
            assert t.retries >= 1, f"{dag.dag_id}.{t.task_id} has no retries"
            assert t.execution_timeout is not None, f"{dag.dag_id}.{t.task_id} has no execution timeout"
    for group in group_files():
        dag = bag.dags[f"dealer_feed_{group.stem}"]
        assert {t.task_id for t in dag.tasks} == {"migrate", "extract", "validate", "transform", "load", "watcher"}
        assert dag.get_task("transform").trigger_rule == "all_done"
        # migrate beside the extract batches (fetching needs no warehouse); validate after both,
        # load only after a successful migrate
        upstream = {t.task_id: t.upstream_task_ids for t in dag.tasks}
        assert upstream["extract"] == set() and upstream["migrate"] == set()
        assert upstream["validate"] == {"migrate", "extract"}
        assert upstream["load"] == {"migrate", "transform"} and dag.get_task("load").trigger_rule == "all_success"


def test_large_group_is_mapped_in_batches():
    dag = load_bag().dags["dealer_feed_large"]
    batches = dag.get_task("extract").op_kwargs_expand_input.value["dealer_ids"]
    assert len(batches) == 12
    assert sum(len(b) for b in batches) == 300
