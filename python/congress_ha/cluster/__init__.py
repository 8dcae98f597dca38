"""Cluster model (cluster.yaml) and the rendering of templates/; never imports the runtime."""
