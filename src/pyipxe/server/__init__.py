"""Servers pyipxe embeds: the demo's loopback HTTP server (``pyipxe serve`` grows here)."""
