"""Engines: the same planning steps over chunks on one machine or partitions on a cluster.

:mod:`optimizer.engines.spark` runs the budget solve on Apache Spark (PySpark, an optional
dependency: ``pip install couponopt[spark]``); import it explicitly.
"""
