"""Downstream tables analysts query, as pure pyarrow transformations of the raw tables (no Dagster import).

- `issues.py`      issues_current, worklogs_current
- `history.py`     issue_field_history (Fivetran dbt_jira parity: initial values, multi-value sets)
- `transitions.py` issue_status_transitions (time in status, lead and cycle time), open_issues_daily
- `census.py`      the id-only issue census and deleted_issues
- `tables.py`      reading helpers: typed projections, latest captures, latest versions
- `dimensions.py`  id -> name lookups from the snapshot tables

`jira_assets.defs.marts` wires these into Dagster assets.
"""
