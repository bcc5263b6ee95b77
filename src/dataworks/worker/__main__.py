"""`python -m dataworks.worker`: the same entrypoint as `dataworks-worker` (the local executor uses it)."""

from dataworks.worker.main import main

main()
