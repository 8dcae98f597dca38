"""SQLAlchemy models and access to the policy, datasource and journal database."""
