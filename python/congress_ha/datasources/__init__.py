"""Datasource drivers: the base class, the registry and the drivers that ship."""
