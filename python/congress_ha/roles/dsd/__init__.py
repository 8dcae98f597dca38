"""The parts of the datasource-driver (DSD) role, one concern each.

``drivers`` (which datasources run), ``publish`` (their tables on the bus),
``actions`` (the leader machine, the journal, the executor) and ``endpoint``
(the ``dsd`` topic's methods); ``roles/datasources.py`` puts them together.
"""
