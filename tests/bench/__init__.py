"""deckhand's benchmark: what a deployment costs and how fast the functions start.

``scripts/bench`` runs ``tests/bench/run.py``, which prints one table:

* ``sizes``: release bootstrap and zip size per function;
* ``coldstart``: init time (process start → first ``GET /runtime/invocation/next``) against a
  tiny Runtime API stub of its own;
* ``deployments``: the local cloud (tests/localcloud) with deckhand's stack, instrumented from
  the outside (``localcloud.metrics``): state transitions, Lambda invocations, AWS API calls per
  service, push → UpdateService and failure signal → rollback latencies, handler times;
* ``scale``: one push fanned out to N services of one cluster;
* ``profiles`` (opt-in): release-profile variants rebuilt into target/bench-profiles/<name>.

Performance is reported, never asserted: test_bench.py only checks that the table is complete.
"""
