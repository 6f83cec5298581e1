"""Reproduction of the dual mechanisms of spatial variable binding in vision-language models."""
__version__ = "0.1.0"
