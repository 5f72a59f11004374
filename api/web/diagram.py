"""Process diagrams as inline SVG, drawn on the server: no JavaScript, no library, no internet.

A diagram shows one process definition as people draw it on a whiteboard: a box per step
(title, responsible agency, expected duration, timers), arrows labelled with the actions
that move a case on, handoffs to another agency and automatic actions (timers, the engine)
drawn differently, final steps with a double frame. A case page highlights the case's
current step; the coordinator's process page colours the steps by their stall share like
a process-mining heatmap. Nothing rests on colour alone: the current step carries the words
"Aktueller Schritt" and a thick frame, each coloured step states its share as text, handoffs
are thick and named, automatic arrows are dashed and say so. Every text stands on a fill
chosen for WCAG contrast (4.5:1; checked by the unit tests for every fill used).

Layout: a layered ("Sugiyama") drawing computed here, because the graphs are small (at most a
few dozen steps) and the layout must be deterministic and keep labels off the boxes. The
pure-Python layout library on PyPI that would fit (grandalf) had its last release in January
2023 and places no edge labels; the ~300 lines below are cheaper to keep than that dependency.

1. Cycles: a depth-first search from the start step, in the order the YAML lists actions,
   finds the back edges (loops like "Unterlagen fehlen – zurück an die Klientin"); they are
   reversed for the layout and drawn back upwards.
2. Ranks: longest path from the start step over the now acyclic graph.
3. Every rank gets a layer for its boxes and, below it, a layer for arrow labels: each
   arrow crossing layers gets a waypoint per layer, and its label is one of them, so labels
   take room like boxes do and never overlap a box or another label.
4. Order within layers: barycentre sweeps, keeping the order with the fewest crossings.
5. Horizontal positions: each node moves towards the mean of its neighbours, subject to
   the order and the gaps (isotonic regression, pool-adjacent-violators), a few sweeps.

:func:`layout` returns the geometry (tested on its own); :func:`render_diagram` draws it.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape

from babel.numbers import format_percent
from markupsafe import Markup

from api.web.i18n import N_, pick, translations
from engine.definition import ActionDef, ProcessDefinition, StepDef

# --------------------------------------------------------------------------- geometry constants

BOX_WIDTH = 232.0
BOX_PAD = 10.0
TITLE_SIZE = 13.0
TEXT_SIZE = 12.0
LINE_HEIGHT = 16.0
LABEL_WIDTH = 176.0  # wrap width of an arrow label
LABEL_LINE_X = 6.0  # where an arrow runs inside its label's slot
LABEL_TEXT_X = 14.0  # where the label text starts inside the slot
LOOP_WIDTH = 26.0  # room right of a box for a self-loop
NODE_GAP = 22.0
LAYER_GAP = 14.0
MIN_LAYER_HEIGHT = 10.0
MARGIN = 16.0
START_SPACE = 34.0  # room above the start step for the start marker
WAYPOINT_WIDTH = 8.0
ORDER_SWEEPS = 12
POSITION_SWEEPS = 10

# --------------------------------------------------------------------------- colours

INK = "#1b1f24"
WHITE = "#ffffff"
BRAND = "#1d3a5f"
MUTED = "#4a5563"
TINT = "#f3f5f8"
NO_DATA = "#e4e8ee"

#: The heatmap's classes: (lower bound of the stall share, fill). Light to dark; the text on
#: each fill is dark or white, whichever contrasts more (the tests check ≥ 4.5:1).
HEAT_CLASSES: tuple[tuple[float, str], ...] = (
    (0.0, "#fff6d5"),
    (0.10, "#fdd88a"),
    (0.25, "#f6a04d"),
    (0.50, "#b8401a"),
    (0.75, "#7a1616"),
)
HEAT_LABELS = (
    N_("unter 10 %"),
    N_("10 bis unter 25 %"),
    N_("25 bis unter 50 %"),
    N_("50 bis unter 75 %"),
    N_("75 % und mehr"),
)


def relative_luminance(colour: str) -> float:
    """WCAG 2.1 relative luminance of a ``#rrggbb`` colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(one: str, other: str) -> float:
    """WCAG 2.1 contrast ratio of two colours (1 to 21)."""
    a, b = sorted((relative_luminance(one), relative_luminance(other)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def text_colour_on(fill: str) -> str:
    """Dark ink or white, whichever contrasts more with ``fill``."""
    return INK if contrast_ratio(INK, fill) >= contrast_ratio(WHITE, fill) else WHITE


def heat_fill(share: float) -> str:
    """The heatmap fill of a stall share (0..1)."""
    fill = HEAT_CLASSES[0][1]
    for lower, colour in HEAT_CLASSES:
        if share >= lower:
            fill = colour
    return fill


# --------------------------------------------------------------------------- text measuring

_NARROW = set("iljtfrI.,:;!|'()[]/ ")
_WIDE = set("mwMWÄÖÜ@%")


def text_width(text: str, size: float, *, bold: bool = False) -> float:
    """An estimate of the rendered width of ``text`` in a sans-serif font (no font files on the server)."""
    units = 0.0
    for char in text:
        if char in _NARROW:
            units += 0.32
        elif char in _WIDE:
            units += 0.86
        elif char.isupper() or char.isdigit():
            units += 0.66
        else:
            units += 0.55
    # Calibrated on DejaVu Sans (Debian's default) in Chromium with every title of processes/*.yaml:
    # the estimate is never below the rendered width; narrower fonts (Segoe UI) leave some air.
    return units * size * (1.29 if bold else 1.13)


def wrap(text: str, width: float, size: float, *, bold: bool = False, max_lines: int = 3) -> list[str]:
    """Break ``text`` into lines that fit ``width``; the last line ends with "…" if text was cut."""
    words = text.split()
    lines: list[str] = []
    current = ""
    for word in words:
        while text_width(word, size, bold=bold) > width:  # a word longer than a line: break it
            cut = len(word)
            while cut > 1 and text_width(word[:cut] + "-", size, bold=bold) > width:
                cut -= 1
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:cut] + "-")
            word = word[cut:]
        candidate = f"{current} {word}" if current else word
        if text_width(candidate, size, bold=bold) <= width:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and text_width(last + " …", size, bold=bold) > width:
            last = last[:-1].rstrip()
        lines = lines[: max_lines - 1] + [last + " …"]
    return lines or [""]


# --------------------------------------------------------------------------- the layout's result


@dataclass(frozen=True, slots=True)
class TextLine:
    text: str
    bold: bool = False
    italic: bool = False
    size: float = TEXT_SIZE


@dataclass(frozen=True, slots=True)
class Box:
    """A step's box: its place (top left corner), size and text lines."""

    step: str
    rank: int
    x: float
    y: float
    width: float
    height: float
    lines: tuple[TextLine, ...]
    fill: str
    final: bool
    highlighted: bool

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y + self.height

    def contains(self, x: float, y: float, tolerance: float = 0.5) -> bool:
        """Whether a point lies in the box or on its border."""
        return self.x - tolerance <= x <= self.right + tolerance and self.y - tolerance <= y <= self.bottom + tolerance


@dataclass(frozen=True, slots=True)
class Route:
    """An arrow from one step to another (or to itself), for one or more actions.

    ``points`` run from the source box's border to the target box's border; the arrow head
    is at the last point. ``label_x``/``label_y`` is the top left of the label text.
    """

    source: str
    target: str
    actions: tuple[str, ...]
    points: tuple[tuple[float, float], ...]
    label: tuple[TextLine, ...]
    label_x: float
    label_y: float
    back: bool
    self_loop: bool
    handoff: bool
    automatic: bool


@dataclass(frozen=True, slots=True)
class Layout:
    boxes: Mapping[str, Box]
    routes: tuple[Route, ...]
    width: float
    height: float


# --------------------------------------------------------------------------- building the graph


@dataclass(slots=True)
class _Edge:
    source: str
    target: str
    actions: list[ActionDef]
    back: bool = False
    automatic: bool = False
    label: tuple[TextLine, ...] = ()
    label_width: float = 0.0
    label_height: float = 0.0
    chain: list[int] = field(default_factory=list)  # vertex ids from the upper end to the lower end


@dataclass(slots=True)
class _Vertex:
    key: int
    layer: int
    width: float
    height: float
    step: str | None = None  # a step's box, else a waypoint of an edge
    edge: int | None = None
    is_label: bool = False
    x: float = 0.0
    y: float = 0.0
    up: list[int] = field(default_factory=list)
    down: list[int] = field(default_factory=list)


def _automatic(step: StepDef, action: ActionDef) -> bool:
    """Whether the engine fires the action (a timer, the end of a child case, a system-only action)."""
    return action.system_only or action.name == step.on_child_done or any(t.action == action.name for t in step.timers)


def _edges_of(definition: ProcessDefinition) -> tuple[list[_Edge], dict[str, list[ActionDef]]]:
    """Arrows between steps (actions with ``next`` to the same step grouped) and self-loops per step."""
    grouped: dict[tuple[str, str], list[ActionDef]] = {}
    loops: dict[str, list[ActionDef]] = {}
    for step in definition.steps.values():
        for action in step.actions.values():
            if action.next is None or action.next not in definition.steps:
                continue
            if action.next == step.id:
                loops.setdefault(step.id, []).append(action)
            else:
                grouped.setdefault((step.id, action.next), []).append(action)
    return [_Edge(s, t, actions) for (s, t), actions in grouped.items()], loops


def _mark_back_edges(steps: Sequence[str], start: str, edges: list[_Edge]) -> None:
    """Depth-first search from the start step (then any step not reached), in YAML order; an
    edge to a step still on the search path closes a cycle and is a back edge."""
    successors: dict[str, list[_Edge]] = {s: [] for s in steps}
    for edge in edges:
        successors[edge.source].append(edge)
    on_path: set[str] = set()
    done: set[str] = set()
    for root in [start, *(s for s in steps if s != start)]:
        if root in done:
            continue
        on_path.add(root)
        stack = [(root, iter(successors[root]))]
        while stack:
            node, pending = stack[-1]
            edge = next(pending, None)
            if edge is None:
                stack.pop()
                on_path.discard(node)
                done.add(node)
                continue
            if edge.target in on_path:
                edge.back = True
            elif edge.target not in done:
                on_path.add(edge.target)
                stack.append((edge.target, iter(successors[edge.target])))


def _ranks(steps: Sequence[str], edges: list[_Edge]) -> dict[str, int]:
    """Longest-path ranks over the acyclic graph (back edges reversed), ties in YAML order."""
    index = {s: i for i, s in enumerate(steps)}
    below: dict[str, list[str]] = {s: [] for s in steps}
    incoming = dict.fromkeys(steps, 0)
    for edge in edges:
        upper, lower = (edge.target, edge.source) if edge.back else (edge.source, edge.target)
        below[upper].append(lower)
        incoming[lower] += 1
    rank = dict.fromkeys(steps, 0)
    ready = [(index[s], s) for s in steps if incoming[s] == 0]
    heapq.heapify(ready)
    while ready:
        _, node = heapq.heappop(ready)
        for lower in below[node]:
            rank[lower] = max(rank[lower], rank[node] + 1)
            incoming[lower] -= 1
            if incoming[lower] == 0:
                heapq.heappush(ready, (index[lower], lower))
    return rank


def _crossings(layers: list[list[int]], vertices: list[_Vertex]) -> int:
    total = 0
    for upper in layers[:-1]:
        position = {v: i for i, v in enumerate(upper)}
        pairs = []
        for v in upper:
            for w in vertices[v].down:
                pairs.append((position[v], vertices[w].x))  # x holds the order index during ordering
        for i, (a1, b1) in enumerate(pairs):
            for a2, b2 in pairs[i + 1 :]:
                if (a1 - a2) * (b1 - b2) < 0:
                    total += 1
    return total


def _order(layers: list[list[int]], vertices: list[_Vertex]) -> list[list[int]]:
    """Barycentre sweeps down and up; the order with the fewest crossings wins (first one on ties)."""

    def number(current: list[list[int]]) -> None:
        for layer in current:
            for i, v in enumerate(layer):
                vertices[v].x = float(i)

    number(layers)
    best = [list(layer) for layer in layers]
    best_crossings = _crossings(layers, vertices)
    current = [list(layer) for layer in layers]
    for sweep in range(ORDER_SWEEPS):
        downwards = sweep % 2 == 0
        sequence = range(1, len(current)) if downwards else range(len(current) - 2, -1, -1)
        for i in sequence:
            layer = current[i]

            def barycentre(v: int, downwards: bool = downwards) -> float:
                neighbours = vertices[v].up if downwards else vertices[v].down
                if not neighbours:
                    return vertices[v].x
                return sum(vertices[n].x for n in neighbours) / len(neighbours)

            keyed = sorted(layer, key=lambda v: (barycentre(v), vertices[v].x))
            current[i] = keyed
            for position, v in enumerate(keyed):
                vertices[v].x = float(position)
        crossings = _crossings(current, vertices)
        if crossings < best_crossings:
            best_crossings = crossings
            best = [list(layer) for layer in current]
    number(best)
    return best


def _pool_adjacent_violators(targets: list[float], offsets: list[float]) -> list[float]:
    """Left edges as close as possible (least squares) to ``targets`` keeping ``x[i+1] >= x[i] + offsets[i]``."""
    shift = [0.0]
    for gap in offsets:
        shift.append(shift[-1] + gap)
    values = [t - s for t, s in zip(targets, shift, strict=True)]
    blocks: list[list[float]] = []  # [mean, weight]
    for value in values:
        blocks.append([value, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, weight = blocks.pop()
            previous = blocks[-1]
            previous[0] = (previous[0] * previous[1] + mean * weight) / (previous[1] + weight)
            previous[1] += weight
    fitted: list[float] = []
    for mean, weight in blocks:
        fitted.extend([mean] * int(weight))
    return [f + s for f, s in zip(fitted, shift, strict=True)]


def _place(layers: list[list[int]], vertices: list[_Vertex]) -> None:
    """Horizontal positions: each node towards the mean centre of its neighbours, order and gaps kept."""

    def gap(a: _Vertex, b: _Vertex) -> float:
        if a.step is None and b.step is None:
            return a.width + NODE_GAP / 2
        return a.width + NODE_GAP

    for layer in layers:
        x = 0.0
        for i, v in enumerate(layer):
            vertices[v].x = x
            if i + 1 < len(layer):
                x += gap(vertices[v], vertices[layer[i + 1]])
    for sweep in range(POSITION_SWEEPS):
        downwards = sweep % 2 == 0
        sequence = range(1, len(layers)) if downwards else range(len(layers) - 2, -1, -1)
        for i in sequence:
            layer = layers[i]
            targets = []
            for v in layer:
                vertex = vertices[v]
                neighbours = vertex.up if downwards else vertex.down
                if not neighbours:
                    neighbours = vertex.down if downwards else vertex.up
                if neighbours:
                    centre = sum(_anchor(vertices[n]) for n in neighbours) / len(neighbours)
                    targets.append(centre - _anchor_offset(vertex))
                else:
                    targets.append(vertex.x)
            offsets = [gap(vertices[a], vertices[b]) for a, b in itertools.pairwise(layer)]
            for v, x in zip(layer, _pool_adjacent_violators(targets, offsets), strict=True):
                vertices[v].x = x
    left = min((v.x for v in vertices), default=0.0)
    for vertex in vertices:
        vertex.x += MARGIN - left


def _anchor_offset(vertex: _Vertex) -> float:
    """Where arrows attach, from the vertex's left edge: a box's centre, a label's line."""
    if vertex.step is not None:
        return BOX_WIDTH / 2
    if vertex.is_label:
        return LABEL_LINE_X
    return vertex.width / 2


def _anchor(vertex: _Vertex) -> float:
    return vertex.x + _anchor_offset(vertex)


# --------------------------------------------------------------------------- texts


@dataclass(frozen=True, slots=True)
class _Texts:
    locale: str
    gettext: Callable[[str], str]

    def percent(self, share: float) -> str:
        return format_percent(share, locale=self.locale)


def _box_lines(
    step: StepDef, texts: _Texts, highlight: str | None, heat: Mapping[str, float] | None
) -> tuple[TextLine, ...]:
    _ = texts.gettext
    lines: list[TextLine] = []
    if step.id == highlight:
        lines.append(TextLine("▶ " + _("Aktueller Schritt"), bold=True))
    title = pick(step.title, step.title_en, texts.locale)
    for part in wrap(title, BOX_WIDTH - 2 * BOX_PAD, TITLE_SIZE, bold=True, max_lines=4):
        lines.append(TextLine(part, bold=True, size=TITLE_SIZE))
    if step.final:
        lines.append(TextLine(_("Abschluss"), italic=True))
        return tuple(lines)
    facts = step.agency or ""
    if step.expected is not None:
        duration = step.expected.german() if texts.locale == "de" else step.expected.english()
        facts = f"{facts} · {duration}" if facts else duration
    for part in wrap(facts, BOX_WIDTH - 2 * BOX_PAD, TEXT_SIZE, max_lines=2):
        lines.append(TextLine(part))
    extras = []
    if step.timers:
        extras.append(_("%(n)s Timer") % {"n": len(step.timers)})
    if step.wait_for_child:
        extras.append(_("wartet auf Teilfall"))
    if extras:
        lines.append(TextLine(" · ".join(extras), italic=True))
    if heat is not None:
        share = heat.get(step.id)
        if share is None or math.isnan(share):
            lines.append(TextLine(_("Über der Frist: keine Daten")))
        else:
            lines.append(TextLine(_("Über der Frist: %(share)s") % {"share": texts.percent(_clamp(share))}, bold=True))
    return tuple(lines)


def _label_lines(source: StepDef, actions: Sequence[ActionDef], texts: _Texts) -> tuple[TextLine, ...]:
    _ = texts.gettext
    lines: list[TextLine] = []
    bullet = "• " if len(actions) > 1 else ""
    for action in actions:
        title = bullet + pick(action.title, action.title_en, texts.locale)
        lines.extend(TextLine(part) for part in wrap(title, LABEL_WIDTH, TEXT_SIZE, max_lines=4))
        if action.handoff is not None:
            lines.append(TextLine(_("Übergabe an %(agency)s") % {"agency": action.handoff.to_agency}, bold=True))
        if _automatic(source, action):
            timer = any(t.action == action.name for t in source.timers)
            lines.append(TextLine(_("automatisch (Timer)") if timer else _("automatisch"), italic=True))
    return tuple(lines)


def _lines_height(lines: Sequence[TextLine]) -> float:
    return len(lines) * LINE_HEIGHT


def _lines_width(lines: Sequence[TextLine]) -> float:
    return max((text_width(line.text, line.size, bold=line.bold) for line in lines), default=0.0)


def _clamp(share: float) -> float:
    return min(1.0, max(0.0, share))


# --------------------------------------------------------------------------- layout


def layout(
    definition: ProcessDefinition,
    *,
    locale: str = "de",
    highlight: str | None = None,
    heat: Mapping[str, float] | None = None,
) -> Layout:
    """The geometry of a process diagram: boxes per step and routed, labelled arrows."""
    texts = _Texts(locale, translations(locale).gettext)
    steps = list(definition.steps)
    start = definition.start if definition.start in definition.steps else steps[0]
    edges, loops = _edges_of(definition)
    _mark_back_edges(steps, start, edges)
    rank = _ranks(steps, edges)

    box_lines = {s: _box_lines(definition.steps[s], texts, highlight, heat) for s in steps}
    loop_labels = {s: _label_lines(definition.steps[s], loops[s], texts) for s in loops}
    vertices: list[_Vertex] = []

    def vertex(layer: int, width: float, height: float, **kwargs: object) -> _Vertex:
        made = _Vertex(len(vertices), layer, width, height, **kwargs)  # type: ignore[arg-type]
        vertices.append(made)
        return made

    step_vertex: dict[str, _Vertex] = {}
    for s in steps:
        extra = LOOP_WIDTH + _lines_width(loop_labels[s]) + 6 if s in loop_labels else 0.0
        height = 2 * BOX_PAD + _lines_height(box_lines[s])
        step_vertex[s] = vertex(2 * rank[s], BOX_WIDTH + extra, height, step=s)
    for number, edge in enumerate(edges):
        source = definition.steps[edge.source]
        edge.automatic = all(_automatic(source, a) for a in edge.actions)
        edge.label = _label_lines(source, edge.actions, texts)
        edge.label_width = LABEL_TEXT_X + _lines_width(edge.label) + 4
        edge.label_height = _lines_height(edge.label)
        upper, lower = (edge.target, edge.source) if edge.back else (edge.source, edge.target)
        top, bottom = step_vertex[upper], step_vertex[lower]
        label_layer = bottom.layer - 1 if edge.back else top.layer + 1
        chain = [top.key]
        for layer in range(top.layer + 1, bottom.layer):
            if layer == label_layer:
                waypoint = vertex(layer, edge.label_width, edge.label_height, edge=number, is_label=True)
            else:
                waypoint = vertex(layer, WAYPOINT_WIDTH, 0.0, edge=number)
            chain.append(waypoint.key)
        chain.append(bottom.key)
        edge.chain = chain
        for a, b in itertools.pairwise(chain):
            vertices[a].down.append(b)
            vertices[b].up.append(a)

    layer_count = max(v.layer for v in vertices) + 1
    index = {s: i for i, s in enumerate(steps)}

    def initial_key(v: _Vertex) -> tuple[float, int]:
        if v.step is not None:
            return (float(index[v.step]), v.key)
        edge = edges[v.edge or 0]
        return (index[edge.source] + 0.5, v.key)

    layers: list[list[int]] = [[] for _ in range(layer_count)]
    for v in sorted(vertices, key=initial_key):
        layers[v.layer].append(v.key)
    layers = _order(layers, vertices)
    _place(layers, vertices)

    # Vertical positions: layer by layer, each as tall as its tallest node.
    layer_top: list[float] = []
    layer_height: list[float] = []
    y = MARGIN + START_SPACE
    for layer in layers:
        height = max([vertices[v].height for v in layer] + [MIN_LAYER_HEIGHT])
        layer_top.append(y)
        layer_height.append(height)
        y += height + LAYER_GAP
    for v in vertices:
        if v.step is not None:
            v.y = layer_top[v.layer]
        else:
            v.y = layer_top[v.layer] + (layer_height[v.layer] - v.height) / 2

    boxes: dict[str, Box] = {}
    for s in steps:
        v = step_vertex[s]
        step = definition.steps[s]
        share = heat.get(s) if heat is not None else None
        if step.final:
            fill = TINT
        elif heat is None:
            fill = WHITE
        elif share is None or math.isnan(share):
            fill = NO_DATA
        else:
            fill = heat_fill(_clamp(share))
        x, y_top = round(v.x, 1), round(v.y, 1)
        boxes[s] = Box(
            s, rank[s], x, y_top, BOX_WIDTH, round(v.height, 1), box_lines[s], fill, step.final, s == highlight
        )

    routes = _routes(edges, vertices, boxes, layer_top, layer_height)
    routes.extend(_loops(definition, loops, loop_labels, boxes))
    width = max([v.x + v.width for v in vertices] + [0.0]) + MARGIN
    height = y - LAYER_GAP + MARGIN
    return Layout(boxes, tuple(routes), round(width, 1), round(height, 1))


def _routes(
    edges: list[_Edge],
    vertices: list[_Vertex],
    boxes: Mapping[str, Box],
    layer_top: list[float],
    layer_height: list[float],
) -> list[Route]:
    """Polylines through the waypoints; arrow ends spread along the box sides, ordered by direction."""
    inner: list[list[tuple[float, float]]] = []
    for edge in edges:
        points: list[tuple[float, float]] = []
        for key in edge.chain[1:-1]:
            v = vertices[key]
            x = _anchor(v)
            if v.is_label:
                points.append((x, v.y))
                points.append((x, v.y + v.height))
            else:
                top = layer_top[v.layer]
                points.append((x, top))
                points.append((x, top + layer_height[v.layer]))
        inner.append(points)
    # Ends on the sides: (step, "top"/"bottom") -> [(neighbour x, edge number, is the chain's first end)]
    sides: dict[tuple[str, str], list[tuple[float, int, bool]]] = {}
    for number, edge in enumerate(edges):
        upper, lower = vertices[edge.chain[0]], vertices[edge.chain[-1]]
        first_x = inner[number][0][0] if inner[number] else _anchor(lower)
        last_x = inner[number][-1][0] if inner[number] else _anchor(upper)
        sides.setdefault((upper.step or "", "bottom"), []).append((first_x, number, True))
        sides.setdefault((lower.step or "", "top"), []).append((last_x, number, False))
    ends: dict[tuple[int, bool], tuple[float, float]] = {}
    for (step, side), items in sides.items():
        box = boxes[step]
        items.sort(key=lambda item: (item[0], item[1]))
        usable = box.width - 24
        for position, (_, number, first) in enumerate(items):
            x = box.x + 12 + usable * (position + 1) / (len(items) + 1)
            ends[(number, first)] = (x, box.bottom if side == "bottom" else box.y)
    routes = []
    for number, edge in enumerate(edges):
        points = [ends[(number, True)], *inner[number], ends[(number, False)]]
        if edge.back:
            points.reverse()
        label_vertex = next(vertices[k] for k in edge.chain[1:-1] if vertices[k].is_label)
        routes.append(
            Route(
                source=edge.source,
                target=edge.target,
                actions=tuple(a.name for a in edge.actions),
                points=tuple((round(x, 1), round(y, 1)) for x, y in points),
                label=edge.label,
                label_x=round(label_vertex.x + LABEL_TEXT_X, 1),
                label_y=round(label_vertex.y, 1),
                back=edge.back,
                self_loop=False,
                handoff=any(a.handoff is not None for a in edge.actions),
                automatic=edge.automatic,
            )
        )
    return routes


def _loops(
    definition: ProcessDefinition,
    loops: Mapping[str, list[ActionDef]],
    labels: Mapping[str, tuple[TextLine, ...]],
    boxes: Mapping[str, Box],
) -> list[Route]:
    routes = []
    for step_id, actions in loops.items():
        box = boxes[step_id]
        step = definition.steps[step_id]
        y1 = box.y + box.height * 0.35
        y2 = box.y + box.height * 0.65
        points = ((box.right, y1), (box.right + LOOP_WIDTH - 6, y1), (box.right + LOOP_WIDTH - 6, y2), (box.right, y2))
        label = labels[step_id]
        routes.append(
            Route(
                source=step_id,
                target=step_id,
                actions=tuple(a.name for a in actions),
                points=tuple((round(x, 1), round(y, 1)) for x, y in points),
                label=label,
                label_x=round(box.right + LOOP_WIDTH + 2, 1),
                label_y=round(box.y + (box.height - _lines_height(label)) / 2, 1),
                back=False,
                self_loop=True,
                handoff=any(a.handoff is not None for a in actions),
                automatic=all(_automatic(step, a) for a in actions),
            )
        )
    return routes


# --------------------------------------------------------------------------- drawing

FONT = 'system-ui, "Segoe UI", "DejaVu Sans", Arial, sans-serif'
HALO = 'paint-order="stroke" stroke="#ffffff" stroke-width="4" stroke-linejoin="round"'


def _n(value: float) -> str:
    """Coordinates with one decimal at most, so the markup is short and identical across runs."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _path(points: Sequence[tuple[float, float]], *, straight: bool = False) -> str:
    """Through the points; between points at different x a curve leaving and arriving vertically."""
    (x0, y0), rest = points[0], points[1:]
    parts = [f"M{_n(x0)} {_n(y0)}"]
    previous = points[0]
    for x, y in rest:
        px, py = previous
        if straight or abs(px - x) < 0.05:
            parts.append(f"L{_n(x)} {_n(y)}")
        else:
            middle = (py + y) / 2
            parts.append(f"C{_n(px)} {_n(middle)} {_n(x)} {_n(middle)} {_n(x)} {_n(y)}")
        previous = (x, y)
    return " ".join(parts)


def _text(x: float, y: float, line: TextLine, fill: str, *, halo: bool = False) -> str:
    weight = ' font-weight="700"' if line.bold else ""
    style = ' font-style="italic"' if line.italic else ""
    extra = f" {HALO}" if halo else ""
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" font-size="{_n(line.size)}"{weight}{style} fill="{fill}"{extra}>'
        f"{escape(line.text)}</text>"
    )


def _lines(x: float, top: float, lines: Sequence[TextLine], fill: str, *, halo: bool = False) -> list[str]:
    return [_text(x, top + (i + 1) * LINE_HEIGHT - 4, line, fill, halo=halo) for i, line in enumerate(lines)]


@dataclass(slots=True)
class _Flow:
    """Legend items laid out in rows, wrapping at ``width``."""

    width: float
    top: float
    x: float = MARGIN
    row: int = 0
    parts: list[str] = field(default_factory=list)
    widest: float = 0.0

    @property
    def y(self) -> float:
        return self.top + self.row * (LINE_HEIGHT + 10)

    def newline(self) -> None:
        if self.x > MARGIN:
            self.row += 1
            self.x = MARGIN

    def item(self, width: float, draw: Callable[[float, float], list[str]]) -> None:
        if self.x > MARGIN and self.x + width > self.width - MARGIN:
            self.newline()
        self.parts.extend(draw(self.x, self.y))
        self.x += width + 18
        self.widest = max(self.widest, self.x)

    @property
    def height(self) -> float:
        return (self.row + 1) * (LINE_HEIGHT + 10) if self.parts else 0.0


def render_diagram(
    definition: ProcessDefinition,
    *,
    locale: str = "de",
    highlight: str | None = None,
    heat: Mapping[str, float] | None = None,
    dom_id: str | None = None,
) -> Markup:
    """The process as inline SVG markup (safe to put into a template as it is).

    Args:
        definition: The process version to draw.
        locale: ``de`` or ``en``: step and action titles (the definition's English titles where
            given) and the diagram's own words.
        highlight: A step to mark as the current one (a case page).
        heat: Stall share per step (0..1, e.g. the share of completed visits over their
            deadline); the steps are coloured like a heatmap and a legend is added. Steps
            missing from the mapping show "keine Daten".
        dom_id: Prefix of the ids inside the SVG (title, description, arrow heads); needed only
            when a page shows two diagrams of the same process version.

    Returns:
        ``<svg role="img">`` with ``<title>`` and ``<desc>``; the same facts belong in a table
        beside it for screen readers (the steps table of the process page).
    """
    _ = translations(locale).gettext
    geometry = layout(definition, locale=locale, highlight=highlight, heat=heat)
    ident = dom_id or f"diagramm-{definition.id}-{definition.version}"
    arrow = {"plain": f"{ident}-pfeil", "handoff": f"{ident}-pfeil-uebergabe"}

    legend = _Flow(width=max(geometry.width, 640.0), top=geometry.height + 4)
    _legend(legend, _, highlight is not None and highlight in definition.steps, heat is not None, arrow)
    width = max(geometry.width, legend.widest + MARGIN)
    height = geometry.height + legend.height + MARGIN

    title = pick(definition.title, definition.title_en, locale)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="process-diagram" role="img" '
        f'aria-labelledby="{ident}-titel" aria-describedby="{ident}-beschreibung" '
        f'viewBox="0 0 {_n(width)} {_n(height)}" width="{_n(width)}" height="{_n(height)}" font-family=\'{FONT}\'>',
        f'<title id="{ident}-titel">'
        + escape(_("Ablaufdiagramm: %(title)s, Version %(version)s") % {"title": title, "version": definition.version})
        + "</title>",
        f'<desc id="{ident}-beschreibung">{escape(_describe(definition, _, locale, highlight, heat))}</desc>',
        "<defs>",
        f'<marker id="{arrow["plain"]}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" fill="{MUTED}"/></marker>',
        f'<marker id="{arrow["handoff"]}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="4" markerHeight="4" '
        f'orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" fill="{BRAND}"/></marker>',
        "</defs>",
        f'<rect x="0" y="0" width="{_n(width)}" height="{_n(height)}" fill="{WHITE}"/>',
    ]
    start = geometry.boxes.get(definition.start)
    if start is not None:
        cx = start.x + start.width / 2
        parts.append(
            f'<g class="start"><circle cx="{_n(cx)}" cy="{_n(start.y - START_SPACE + 8)}" r="7" fill="{INK}"/>'
            f'<path d="M{_n(cx)} {_n(start.y - START_SPACE + 15)} L{_n(cx)} {_n(start.y)}" stroke="{MUTED}" '
            f'stroke-width="1.5" marker-end="url(#{arrow["plain"]})"/>'
            + _text(cx + 12, start.y - START_SPACE + 12, TextLine(_("Start"), bold=True), INK)
            + "</g>"
        )
    steps = definition.steps
    for route in geometry.routes:
        source_title = pick(steps[route.source].title, steps[route.source].title_en, locale)
        target_title = pick(steps[route.target].title, steps[route.target].title_en, locale)
        stroke, marker, thickness = (BRAND, arrow["handoff"], 3.0) if route.handoff else (MUTED, arrow["plain"], 1.5)
        dash = ' stroke-dasharray="6 4"' if route.automatic else ""
        parts.append(
            f'<g class="edge" data-from="{escape(route.source)}" data-to="{escape(route.target)}" '
            f'data-actions="{escape(" ".join(route.actions))}">'
            f"<title>{escape(f'{source_title} → {target_title}')}</title>"
            f'<path d="{_path(route.points, straight=route.self_loop)}" fill="none" stroke="{stroke}" '
            f'stroke-width="{_n(thickness)}"{dash} marker-end="url(#{marker})"/></g>'
        )
    for box in geometry.boxes.values():
        parts.extend(_box(box, steps[box.step], definition, locale))
    for route in geometry.routes:
        parts.append('<g class="edge-label" aria-hidden="true">')
        parts.extend(_lines(route.label_x, route.label_y, route.label, INK, halo=True))
        parts.append("</g>")
    parts.extend(legend.parts)
    parts.append("</svg>")
    return Markup("".join(parts))


def _box(box: Box, step: StepDef, definition: ProcessDefinition, locale: str) -> list[str]:
    ink = text_colour_on(box.fill)
    agency = definition.agencies.get(step.agency or "", "")
    tooltip = pick(step.title, step.title_en, locale) + (f" – {agency}" if agency else "")
    parts = [
        f'<g class="step{" step--current" if box.highlighted else ""}{" step--final" if box.final else ""}" '
        f'data-step="{escape(box.step)}"><title>{escape(tooltip)}</title>'
    ]
    if box.highlighted:
        parts.append(
            f'<rect x="{_n(box.x - 6)}" y="{_n(box.y - 6)}" width="{_n(box.width + 12)}" '
            f'height="{_n(box.height + 12)}" rx="9" fill="none" stroke="{INK}" stroke-width="2" '
            f'stroke-dasharray="5 3"/>'
        )
    frame = 4.0 if box.highlighted else 1.5
    parts.append(
        f'<rect x="{_n(box.x)}" y="{_n(box.y)}" width="{_n(box.width)}" height="{_n(box.height)}" rx="6" '
        f'fill="{box.fill}" stroke="{INK if box.highlighted else BRAND}" stroke-width="{_n(frame)}"/>'
    )
    if box.final:
        parts.append(
            f'<rect x="{_n(box.x + 4)}" y="{_n(box.y + 4)}" width="{_n(box.width - 8)}" '
            f'height="{_n(box.height - 8)}" rx="4" fill="none" stroke="{BRAND}" stroke-width="1"/>'
        )
    parts.extend(_lines(box.x + BOX_PAD, box.y + BOX_PAD, box.lines, ink))
    parts.append("</g>")
    return parts


def _legend(
    flow: _Flow,
    _: Callable[[str], str],
    highlighted: bool,
    heat: bool,
    arrow: Mapping[str, str],
) -> None:
    """What the line styles, frames and colours mean, in words (drawn below the diagram)."""

    def sample(text: str, stroke: str, thickness: float, dash: str, marker: str) -> None:
        line = TextLine(text)
        width = 34 + text_width(text, TEXT_SIZE)

        def draw(x: float, y: float) -> list[str]:
            mid = y + LINE_HEIGHT / 2
            return [
                f'<path d="M{_n(x)} {_n(mid)} L{_n(x + 26)} {_n(mid)}" stroke="{stroke}" '
                f'stroke-width="{_n(thickness)}"{dash} marker-end="url(#{marker})"/>',
                _text(x + 34, y + LINE_HEIGHT - 4, line, INK),
            ]

        flow.item(width, draw)

    def swatch(text: str, fill: str, *, frame: str = BRAND, double: bool = False, thick: bool = False) -> None:
        line = TextLine(text)
        width = 26 + text_width(text, TEXT_SIZE)

        def draw(x: float, y: float) -> list[str]:
            out = [
                f'<rect x="{_n(x)}" y="{_n(y + 1)}" width="18" height="14" rx="2" fill="{fill}" '
                f'stroke="{frame}" stroke-width="{"3" if thick else "1"}"/>'
            ]
            if double:
                out.append(
                    f'<rect x="{_n(x + 3)}" y="{_n(y + 4)}" width="12" height="8" fill="none" stroke="{frame}"/>'
                )
            out.append(_text(x + 26, y + LINE_HEIGHT - 4, line, INK))
            return out

        flow.item(width, draw)

    def heading(text: str) -> None:
        line = TextLine(text, bold=True)
        flow.item(text_width(text, TEXT_SIZE, bold=True), lambda x, y: [_text(x, y + LINE_HEIGHT - 4, line, INK)])

    flow.parts.append('<g class="legend">')
    heading(_("Legende:"))
    sample(_("Aktion"), MUTED, 1.5, "", arrow["plain"])
    sample(_("Übergabe an eine andere Stelle"), BRAND, 3.0, "", arrow["handoff"])
    sample(_("automatisch (Timer, Teilfall, System)"), MUTED, 1.5, ' stroke-dasharray="6 4"', arrow["plain"])
    swatch(_("Doppelrahmen: Abschluss"), TINT, double=True)
    if highlighted:
        swatch(_("Dicker Rahmen mit ▶: aktueller Schritt"), WHITE, frame=INK, thick=True)
    if heat:
        flow.newline()
        heading(_("Anteil der abgeschlossenen Besuche über der Frist:"))
        for (_lower, fill), label in zip(HEAT_CLASSES, HEAT_LABELS, strict=True):
            swatch(_(label), fill)
        swatch(_("keine Daten"), NO_DATA)
    flow.parts.append("</g>")


def _describe(
    definition: ProcessDefinition,
    _: Callable[[str], str],
    locale: str,
    highlight: str | None,
    heat: Mapping[str, float] | None,
) -> str:
    """The diagram's text alternative in a few sentences (the steps table gives the details)."""
    steps = definition.steps

    def title(step_id: str) -> str:
        step = steps[step_id]
        return pick(step.title, step.title_en, locale)

    finals = [title(s) for s, step in steps.items() if step.final]
    sentences = [
        _("%(n)s Schritte; der Ablauf beginnt mit „%(start)s“ und endet mit: %(finals)s.")
        % {"n": len(steps), "start": title(definition.start), "finals": "; ".join(finals)}
    ]
    if highlight is not None and highlight in steps:
        sentences.append(_("Der Fall steht im Schritt „%(step)s“.") % {"step": title(highlight)})
    if heat is not None:
        sentences.append(
            _(
                "Die Farbe jedes Schritts zeigt den Anteil seiner abgeschlossenen Besuche, die über der Frist lagen; "
                "der Wert steht auch im Schritt."
            )
        )
    sentences.append(_("Alle Schritte, Aktionen und Fristen stehen auch in der Tabelle der Schritte."))
    return " ".join(sentences)


__all__ = [
    "HEAT_CLASSES",
    "Box",
    "Layout",
    "Route",
    "contrast_ratio",
    "heat_fill",
    "layout",
    "render_diagram",
    "text_colour_on",
]
