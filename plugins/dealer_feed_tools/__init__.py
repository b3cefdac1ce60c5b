"""Development tools beside the worker package: the OpenTrack simulator, the demo, the local
Airflow launcher and process-tree control. Workers never import this package (the import
contract in pyproject.toml and tests/unit/test_layers.py check it); it may import `dealer_feed`."""
