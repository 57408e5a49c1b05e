"""Tracing Python functions into the raster dialect (see tracer.py)."""
from .tracer import FunctionScope, ModuleTrace, TracedArray, active_scope

__all__ = ["FunctionScope", "ModuleTrace", "TracedArray", "active_scope"]
