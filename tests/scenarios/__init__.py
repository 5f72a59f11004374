"""Scenario tests: one realistic case walked through each shipped process.

A package so that ``test_processes.py`` here does not clash with ``tests/api/test_processes.py``
under pytest's default (prepend) import mode.
"""
