"""Synthetic stimuli: geometry, entities, rendering and the canonical item sets."""
from .entities import (COLOUR_POOLS, OBJECTS, PAIR_COLOURS, PALETTES, PREPOSITIONS, SETTINGS, SYSTEM_PROMPT,
                       TEMPLATES, Entity, entities, pair_entities, prompt, sprite)
from .geometry import (ANSWER_SLOT, DIRECTIONS, OPPOSITE, ORIENTATION_OF, ORIENTATIONS, Geometry,
                       default_object_tokens)
from .items import grid_items, relation_items
from .render import compose, render_scene

__all__ = ["COLOUR_POOLS", "PAIR_COLOURS", "pair_entities", "ANSWER_SLOT", "DIRECTIONS", "OBJECTS", "OPPOSITE", "ORIENTATIONS", "ORIENTATION_OF", "PALETTES",
           "PREPOSITIONS", "SETTINGS", "SYSTEM_PROMPT", "TEMPLATES", "Entity", "Geometry", "compose",
           "default_object_tokens", "entities", "grid_items", "prompt", "relation_items", "render_scene", "sprite"]
