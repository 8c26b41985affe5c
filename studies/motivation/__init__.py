"""Motivation experiments of Section 3 of the paper (Figs. 2, 4-9); see README.md here.

Each ``fig*.py`` module builds one figure family; ``run_all.py`` builds all of them, running
the many-case figures (4-7) as one fan-out through the project's runner
(:func:`alpa_serve.experiments.suite_runner.run_entries`).
"""
