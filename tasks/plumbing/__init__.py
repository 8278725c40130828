"""What the stages run on: the ``Stage`` base class and its counts (``stage``), the batch records
(``records``), ``progress``, ``memory`` (workers give memory back), ``warmup`` and ``faults``
(fault points for the tests)."""
