"""corpusclean flows: wiring of the tasks in ``tasks/`` into Prefect flows, and the CLI."""
