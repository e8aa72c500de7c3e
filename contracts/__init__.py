"""Verity's cross-service contracts: events, topics, headers and problem types.

This package is the only code that crosses a service boundary. It holds data shapes and
naming rules, never behaviour that belongs to one service.
"""
