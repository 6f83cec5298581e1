"""Canvas geometry shared by stimuli and analyses (paper Table 4).

A square canvas of `grid` x `grid` visual tokens, `px_per_token` pixels each. Entities are
`object_tokens` x `object_tokens` tokens, separated by `gap_tokens` tokens, so every object covers
whole tokens and the analyses can name the exact grid cells it occupies.
"""
from __future__ import annotations

from dataclasses import dataclass

ORIENTATIONS = ("horizontal", "vertical")
DIRECTIONS = ("left", "right", "above", "below")
ORIENTATION_OF = {"left": "horizontal", "right": "horizontal", "above": "vertical", "below": "vertical"}
OPPOSITE = {"left": "right", "right": "left", "above": "below", "below": "above"}
ANSWER_SLOT = {"left": 0, "above": 0, "right": 2, "below": 2}


def default_object_tokens(grid: int) -> int:
    """Paper Table 4 pattern: S = sp = round(N / 6) (Qwen 12 -> 2, Gemma 16 -> 3, Pixtral 15 -> 2)."""
    return max(1, round(grid / 6))


@dataclass(frozen=True)
class Geometry:
    grid: int
    px_per_token: int
    object_tokens: int
    gap_tokens: int

    def __post_init__(self):
        span = 3 * self.object_tokens + 2 * self.gap_tokens
        if min(self.grid, self.px_per_token, self.object_tokens) < 1 or self.gap_tokens < 0:
            raise ValueError(f"invalid geometry {self}")
        if span > self.grid:
            raise ValueError(f"three objects of {self.object_tokens} tokens with gaps of {self.gap_tokens} "
                             f"need {span} tokens but the grid has {self.grid}")

    @property
    def canvas_px(self) -> int:
        return self.grid * self.px_per_token

    @property
    def object_px(self) -> int:
        return self.object_tokens * self.px_per_token

    def canonical_layout(self, orientation: str) -> tuple[tuple[int, int], ...]:
        """Top-left (row, col) token of slots 0, 1, 2: centred with integer division (paper §2.2)."""
        s, sp, n = self.object_tokens, self.gap_tokens, self.grid
        origin = (n - (3 * s + 2 * sp)) // 2
        across = (n - s) // 2
        along = [origin + k * (s + sp) for k in range(3)]
        if orientation == "horizontal":
            return tuple((across, a) for a in along)
        if orientation == "vertical":
            return tuple((a, across) for a in along)
        raise ValueError(f"orientation must be one of {ORIENTATIONS}, got {orientation!r}")

    def cells(self, top_left: tuple[int, int]) -> list[tuple[int, int]]:
        """Grid cells (row, col) covered by an object whose top-left token is `top_left`."""
        r0, c0 = top_left
        s = self.object_tokens
        return [(r0 + dr, c0 + dc) for dr in range(s) for dc in range(s)]

    def object_cells(self, orientation: str) -> list[list[tuple[int, int]]]:
        """Cells of each canonical slot's object (slot 0, 1, 2)."""
        return [self.cells(tl) for tl in self.canonical_layout(orientation)]

    def strip_cells(self, orientation: str, width: int | None = None) -> list[list[tuple[int, int]]]:
        """Cells of each slot's strip: full columns (horizontal) or full rows (vertical).

        width=None tiles the grid in three near-equal bands, the extra token(s) going to the middle one
        (what the authors' code does: Qwen 4/4/4, Gemma 5/6/5, Pixtral 5/5/5). An integer width gives
        bands of that many tokens around each object (paper Table 4's "strip width"), clipped to the grid.
        """
        n, s = self.grid, self.object_tokens
        if width is None:
            side = n // 3
            bands = [range(0, side), range(side, n - side), range(n - side, n)]
        else:
            if width < s:
                raise ValueError(f"strip width {width} is narrower than an object ({s} tokens)")
            starts = [c if orientation == "horizontal" else r for r, c in self.canonical_layout(orientation)]
            bands = [range(max(0, a - (width - s) // 2), min(n, a - (width - s) // 2 + width)) for a in starts]
        if orientation == "horizontal":
            return [[(r, c) for r in range(n) for c in band] for band in bands]
        return [[(r, c) for r in band for c in range(n)] for band in bands]

    def index(self, cells: list[tuple[int, int]]) -> list[int]:
        """Row-major grid indices (r * grid + c) of cells: the order of `Prepared.grid_positions`."""
        return [r * self.grid + c for r, c in cells]

    def as_dict(self) -> dict:
        return dict(grid=self.grid, px_per_token=self.px_per_token, object_tokens=self.object_tokens,
                    gap_tokens=self.gap_tokens, canvas_px=self.canvas_px)

    @classmethod
    def from_dict(cls, g: dict) -> "Geometry":
        """The inverse of `as_dict`."""
        return cls(g["grid"], g["px_per_token"], g["object_tokens"], g["gap_tokens"])

    def stamp(self, items):
        """`items` (a stimulus table) carrying this geometry into its parquet file (`DataFrame.attrs`), so that
        analyses which need the canvas but not the model (the probes) read it there instead of loading the
        model's code."""
        items.attrs["geometry"] = self.as_dict()
        return items

    @classmethod
    def of(cls, items) -> "Geometry":
        """The geometry a stimulus table was rendered with (`stamp`)."""
        if "geometry" not in items.attrs:
            raise ValueError("this stimulus table does not record its canvas geometry (written before the stimuli "
                             "rule stamped it): rerun the stimuli rule")
        return cls.from_dict(items.attrs["geometry"])
