"""Where the tiles go: arrangements on a grid of units, turned into fractions.

An arrangement is drawn on a small grid of equal units (3x3 for a 1+5) and
each cell spans whole units, so tiles abut exactly and never overlap by
construction; fractions are computed from the unit edges (``(c + w) / n - c / n``),
not by adding widths, so rounding never pushes a tile past the screen's edge.
The first cell of a ``1+N`` arrangement is its big tile: source assignment
gives it the first (or nearest) camera.
"""

from __future__ import annotations

from dataclasses import dataclass

from csuhub.api import Tile, TileSource

#: the sizes a grid accepts (8x8 = 64 tiles, the contract's maximum)
MAX_SIDE = 8
#: the 1+N arrangements, by N
ONE_PLUS = (5, 7, 12)


@dataclass(frozen=True, slots=True)
class Cell:
    """A tile's place in units: column, row, width and height."""

    col: int
    row: int
    w: int = 1
    h: int = 1


@dataclass(frozen=True, slots=True)
class Arrangement:
    """Cells on a ``columns``x``rows`` unit grid; ``big`` when the first cell is
    larger than the others (it may take a different stream)."""

    columns: int
    rows: int
    cells: tuple[Cell, ...]
    big: bool = False

    def tile(self, index: int, source: TileSource) -> Tile:
        cell = self.cells[index]
        x0, x1 = cell.col / self.columns, (cell.col + cell.w) / self.columns
        y0, y1 = cell.row / self.rows, (cell.row + cell.h) / self.rows
        return Tile(x0, y0, x1 - x0, y1 - y0, source)

    def __len__(self) -> int:
        return len(self.cells)


def grid(columns: int, rows: int) -> Arrangement:
    """``columns``x``rows`` equal tiles, row-major."""
    if not (1 <= columns <= MAX_SIDE and 1 <= rows <= MAX_SIDE):
        raise ValueError(f"a grid is 1..{MAX_SIDE} columns by 1..{MAX_SIDE} rows")
    cells = tuple(Cell(c, r) for r in range(rows) for c in range(columns))
    return Arrangement(columns, rows, cells)


def grid_for(count: int) -> tuple[int, int]:
    """The smallest near-square grid holding ``count`` tiles (at least 1x1, at
    most 8x8): as many columns as rows or one more, since screens are wider
    than tall (5 -> 3x2, 9 -> 3x3, 10 -> 4x3)."""
    count = max(1, min(count, MAX_SIDE * MAX_SIDE))
    columns = 1
    while columns * columns < count:
        columns += 1
    rows = -(-count // columns)
    return columns, rows


def one_plus(n: int) -> Arrangement:
    """The classic VMS arrangements: one big tile and ``n`` small ones.

    ::

        1+5 (3x3 units)     1+7 (4x4 units)       1+12 (4x4 units)
        +-------+---+       +-----------+---+     +---+---+---+---+
        |       | 1 |       |           | 1 |     | 1 | 2 | 3 | 4 |
        |   0   +---+       |           +---+     +---+---+---+---+
        |       | 2 |       |     0     | 2 |     | 5 |       | 6 |
        +---+---+---+       |           +---+     +---+   0   +---+
        | 3 | 4 | 5 |       |           | 3 |     | 7 |       | 8 |
        +---+---+---+       +---+---+---+---+     +---+---+---+---+
                            | 4 | 5 | 6 | 7 |     | 9 |10 |11 |12 |
                            +---+---+---+---+     +---+---+---+---+

    Small tiles are numbered row-major; 0 is the big tile.
    """
    if n == 5:
        small = [Cell(2, 0), Cell(2, 1), Cell(0, 2), Cell(1, 2), Cell(2, 2)]
        return Arrangement(3, 3, (Cell(0, 0, 2, 2), *small), big=True)
    if n == 7:
        small = [Cell(3, r) for r in range(3)] + [Cell(c, 3) for c in range(4)]
        return Arrangement(4, 4, (Cell(0, 0, 3, 3), *small), big=True)
    if n == 12:
        ring = [Cell(c, r) for r in range(4) for c in range(4) if not (1 <= c <= 2 and 1 <= r <= 2)]
        return Arrangement(4, 4, (Cell(1, 1, 2, 2), *ring), big=True)
    raise ValueError(f"1+N is one of {', '.join(f'1+{k}' for k in ONE_PLUS)}, not 1+{n}")


def spotlight(count: int) -> Arrangement:
    """The arrangement for an incident's ``count`` nearest cameras (1..9),
    the nearest in the biggest tile::

        1       2         3          4          5-6     7-8     9
        +---+   +-+-+     +---+-+    +-+-+      1+5     1+7     3x3
        | 0 |   |0|1|     |   |1|    |0|1|
        |   |   | | |     | 0 +-+    +-+-+
        +---+   +-+-+     |   |2|    |2|3|
                          +---+-+    +-+-+

    Cells a smaller incident leaves over (5 in a 1+5) stay empty.
    """
    if not 1 <= count <= 9:
        raise ValueError("a spotlight shows 1 to 9 cameras")
    if count == 1:
        return Arrangement(1, 1, (Cell(0, 0),), big=True)
    if count == 2:
        return grid(2, 1)
    if count == 3:
        return Arrangement(2, 2, (Cell(0, 0, 1, 2), Cell(1, 0), Cell(1, 1)), big=True)
    if count == 4:
        return grid(2, 2)
    if count <= 6:
        return one_plus(5)
    if count <= 8:
        return one_plus(7)
    return grid(3, 3)
