"""Beta (AlpaServe, OSDI'23) reproduction: profiles, workloads, placement policies, simulator."""

__version__ = "0.1.0"
