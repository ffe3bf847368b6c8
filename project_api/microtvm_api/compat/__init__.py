"""Compatibility layers for servers and clients written against older Project API libraries."""
