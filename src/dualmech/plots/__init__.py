"""One function per paper figure. Figures read tables and images, never models."""
from .behaviour import fig1_stimuli, table1_figure, table5_figure
from .probing import fig4_heatmaps, load_heatmaps, probe_depth_figure

__all__ = ["fig1_stimuli", "fig4_heatmaps", "load_heatmaps", "probe_depth_figure", "table1_figure", "table5_figure"]
