"""Engines: the same steps over chunks on one machine or partitions on a cluster.

On Apache Spark (PySpark, an optional dependency: ``pip install couponopt[spark]``; import the
modules explicitly):

* :mod:`optimizer.engines.spark` plans under the budget and every constraint kind;
* :mod:`optimizer.engines.spark_scoring` scores users with the models broadcast once;
* :mod:`optimizer.engines.spark_valuation` finds a log's customers in a plan of any size, for
  the offline estimators.
"""
