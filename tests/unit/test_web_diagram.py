"""The process diagram: layout (every step once, arrows between the right boxes, no overlaps,
deterministic, cycles end) and the SVG (accessible name, marks that are not only colour, contrast)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.web.diagram import (
    BRAND,
    HEAT_CLASSES,
    INK,
    NO_DATA,
    TINT,
    WHITE,
    Layout,
    contrast_ratio,
    heat_fill,
    layout,
    render_diagram,
    text_colour_on,
    text_width,
)
from engine.definition import ProcessDefinition, load_definition
from tests.factories import make_definition
from tests.strategies import definitions

PROCESSES = sorted((Path(__file__).resolve().parents[2] / "processes").glob("*.yaml"))
SVG = "{http://www.w3.org/2000/svg}"


def _shipped(path: Path) -> ProcessDefinition:
    return load_definition(path.read_text(encoding="utf-8"), str(path))


def _graph(edges: dict[str, list[str]], loops: tuple[str, ...] = ()) -> ProcessDefinition:
    """A definition from ``step -> [next steps]``; steps without successors are final."""
    steps: dict[str, dict[str, Any]] = {}
    for step, targets in edges.items():
        if not targets and step not in loops:
            steps[step] = {"title": f"Ende {step}", "final": True}
            continue
        actions = {f"{step}_zu_{t}": {"title": f"{step} nach {t}", "next": t} for t in targets}
        if step in loops:
            actions[f"{step}_nochmal"] = {"title": "Noch einmal", "next": step}
        steps[step] = {"title": f"Schritt {step}", "agency": "KIM-CM", "expected": "3 Arbeitstage", "actions": actions}
    return make_definition(steps=steps)


def _next_steps(definition: ProcessDefinition) -> set[tuple[str, str, str]]:
    return {
        (step.id, action.next, action.name)
        for step in definition.steps.values()
        for action in step.actions.values()
        if action.next is not None
    }


def _label_box(route: Any) -> tuple[float, float, float, float]:
    width = max(text_width(line.text, line.size, bold=line.bold) for line in route.label)
    return route.label_x, route.label_y, route.label_x + width, route.label_y + 16 * len(route.label)


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def assert_sound(definition: ProcessDefinition, geometry: Layout) -> None:
    """Every step once; each action with ``next`` on exactly one arrow, which runs from the
    border of its step's box to the border of the next step's box; boxes and labels apart."""
    assert list(geometry.boxes) == list(definition.steps)
    drawn = [(r.source, r.target, a) for r in geometry.routes for a in r.actions]
    assert len(drawn) == len(set(drawn))
    assert set(drawn) == _next_steps(definition)
    for route in geometry.routes:
        source, target = geometry.boxes[route.source], geometry.boxes[route.target]
        (x0, y0), (x1, y1) = route.points[0], route.points[-1]
        assert source.contains(x0, y0) and target.contains(x1, y1), route
        if route.self_loop:
            assert route.source == route.target and x0 == source.right
        elif route.back:
            assert y0 == source.y and y1 == target.bottom, "a loop back leaves upwards"
            assert target.rank <= source.rank
        else:
            assert y0 == source.bottom and y1 == target.y
            assert target.rank > source.rank
    boxes = [(b.x - 6, b.y - 6, b.right + 6, b.bottom + 6) for b in geometry.boxes.values()]
    for i, one in enumerate(boxes):
        for other in boxes[i + 1 :]:
            assert not _overlap(one, other), "boxes overlap"
    for route in geometry.routes:
        label = _label_box(route)
        for box in geometry.boxes.values():
            assert not _overlap(label, (box.x, box.y, box.right, box.bottom)), (route.actions, box.step)
    for box in geometry.boxes.values():
        assert box.x >= 0 and box.y >= 0 and box.right <= geometry.width and box.bottom <= geometry.height


@pytest.mark.parametrize("path", PROCESSES, ids=lambda p: p.stem)
def test_shipped_processes_lay_out_soundly(path: Path) -> None:
    definition = _shipped(path)
    assert_sound(definition, layout(definition))


def test_factory_process_ranks_follow_the_flow() -> None:
    geometry = layout(make_definition())
    ranks = {step: box.rank for step, box in geometry.boxes.items()}
    assert ranks == {"intake": 0, "review": 1, "approved": 2, "rejected": 2}
    assert geometry.boxes["approved"].y == geometry.boxes["rejected"].y


def test_cycles_and_self_loops_terminate_and_loop_back_upwards() -> None:
    definition = _graph(
        {"a": ["b"], "b": ["c", "a"], "c": ["d", "b", "a"], "d": ["e"], "e": []},
        loops=("c",),
    )
    geometry = layout(definition)
    assert_sound(definition, geometry)
    back = {(r.source, r.target) for r in geometry.routes if r.back}
    assert back == {("b", "a"), ("c", "b"), ("c", "a")}
    loop = [r for r in geometry.routes if r.self_loop]
    assert [(r.source, r.actions) for r in loop] == [("c", ("c_nochmal",))]


def test_a_cycle_not_through_the_start_step_is_cut_once() -> None:
    definition = _graph({"s": ["x"], "x": ["y"], "y": ["z"], "z": ["x", "end"], "end": []})
    geometry = layout(definition)
    assert_sound(definition, geometry)
    assert [(r.source, r.target) for r in geometry.routes if r.back] == [("z", "x")]
    assert [geometry.boxes[s].rank for s in ("s", "x", "y", "z", "end")] == [0, 1, 2, 3, 4]


def test_actions_to_the_same_step_share_one_arrow() -> None:
    definition = make_definition(
        steps={
            "intake": {
                "title": "Erfassung",
                "agency": "KIM-CM",
                "expected": "3 Arbeitstage",
                "actions": {
                    "forward": {"title": "Weiterleiten", "next": "done"},
                    "shortcut": {"title": "Abkürzen", "next": "done"},
                },
            },
            "done": {"title": "Erledigt", "final": True},
        }
    )
    (route,) = layout(definition).routes
    assert route.actions == ("forward", "shortcut")
    assert [line.text for line in route.label] == ["• Weiterleiten", "• Abkürzen"]


@st.composite
def graphs(draw: st.DrawFn) -> ProcessDefinition:
    """A chain s0 → … → s(n-1) → end, plus arbitrary extra arrows (forward, back, self) among the steps."""
    count = draw(st.integers(1, 9))
    steps = [f"s{i}" for i in range(count)]
    edges: dict[str, list[str]] = {s: [steps[i + 1] if i + 1 < count else "end"] for i, s in enumerate(steps)}
    extra = draw(st.lists(st.tuples(st.sampled_from(steps), st.sampled_from([*steps, "end"])), max_size=14))
    loops = tuple(sorted({a for a, b in extra if a == b}))
    for a, b in extra:
        if a != b and b not in edges[a]:
            edges[a].append(b)
    edges["end"] = []
    return _graph(edges, loops)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_any_graph_lays_out_soundly_and_deterministically(definition: ProcessDefinition) -> None:
    geometry = layout(definition)
    assert_sound(definition, geometry)
    assert layout(definition) == geometry


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definitions())
def test_drawn_definitions_with_handoffs_and_timers_lay_out_soundly(drawn: Any) -> None:
    definition = load_definition(drawn.text, "drawn.yaml")
    assert_sound(definition, layout(definition))
    ET.fromstring(render_diagram(definition, heat={}))


def test_rendering_is_deterministic_markup() -> None:
    definition = _shipped(PROCESSES[0])
    first = render_diagram(definition, highlight=definition.start, heat={definition.start: 0.3})
    again = render_diagram(_shipped(PROCESSES[0]), highlight=definition.start, heat={definition.start: 0.3})
    assert first == again


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)


def _texts(element: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in element.iter(f"{SVG}text")]


def test_svg_has_an_accessible_name_and_each_step_once() -> None:
    definition = make_definition()
    root = _parse(render_diagram(definition))
    assert root.get("role") == "img"
    title_id, desc_id = root.get("aria-labelledby"), root.get("aria-describedby")
    title = root.find(f"{SVG}title")
    desc = root.find(f"{SVG}desc")
    assert title is not None and title.get("id") == title_id
    assert title.text == "Ablaufdiagramm: Aufnahme, Version 1"
    assert desc is not None and desc.get("id") == desc_id
    assert "4 Schritte" in (desc.text or "") and "„Erfassung“" in (desc.text or "")
    steps = [g.get("data-step") for g in root.iter(f"{SVG}g") if g.get("data-step")]
    assert steps == ["intake", "review", "approved", "rejected"]
    edges = {(g.get("data-from"), g.get("data-to")) for g in root.iter(f"{SVG}g") if g.get("data-from")}
    assert edges == {("intake", "review"), ("review", "approved"), ("review", "rejected")}
    texts = _texts(root)
    assert "Weiterleiten" in texts and "KIM-CM · 3 Arbeitstage" in texts
    assert texts.count("Abschluss") == 2


def test_english_uses_the_english_titles_and_words() -> None:
    root = _parse(render_diagram(make_definition(), locale="en"))
    texts = _texts(root)
    assert "Intake" in texts and "Forward" in texts
    assert "KIM-CM · 3 office days" in texts
    # Action titles without English fall back to German.
    assert "Bewilligen" in texts


def test_the_current_step_is_marked_by_words_and_frame_not_only_colour() -> None:
    root = _parse(render_diagram(make_definition(), highlight="review"))
    current = [g for g in root.iter(f"{SVG}g") if "step--current" in (g.get("class") or "")]
    assert [g.get("data-step") for g in current] == ["review"]
    assert "▶ Aktueller Schritt" in _texts(current[0])
    frames = list(current[0].iter(f"{SVG}rect"))
    assert any(r.get("stroke-dasharray") for r in frames) and any(r.get("stroke-width") == "4" for r in frames)
    assert "Der Fall steht im Schritt „Prüfung“." in (root.find(f"{SVG}desc").text or "")  # type: ignore[union-attr]


def test_heat_colours_steps_states_the_share_and_adds_a_legend() -> None:
    root = _parse(render_diagram(make_definition(), heat={"intake": 0.05, "review": 0.62}))
    fills = {
        g.get("data-step"): g.find(f"{SVG}rect").get("fill")  # type: ignore[union-attr]
        for g in root.iter(f"{SVG}g")
        if g.get("data-step")
    }
    assert fills["intake"] == heat_fill(0.05) == HEAT_CLASSES[0][1]
    assert fills["review"] == heat_fill(0.62) == HEAT_CLASSES[3][1]
    assert fills["approved"] == TINT
    texts = _texts(root)
    assert "Über der Frist: 5 %" in [t.replace("\xa0", " ") for t in texts]
    assert "Über der Frist: 62 %" in [t.replace("\xa0", " ") for t in texts]
    assert "Anteil der abgeschlossenen Besuche über der Frist:" in texts
    assert "75 % und mehr" in texts and "keine Daten" in texts


def test_a_step_without_figures_says_so() -> None:
    texts = _texts(_parse(render_diagram(make_definition(), heat={})))
    assert texts.count("Über der Frist: keine Daten") == 2  # the two working steps; final steps have no share


@pytest.mark.parametrize("fill", [WHITE, TINT, NO_DATA, *(fill for _, fill in HEAT_CLASSES)])
def test_text_on_every_fill_has_aa_contrast(fill: str) -> None:
    assert contrast_ratio(text_colour_on(fill), fill) >= 4.5


def test_heat_classes_get_darker_and_the_frames_contrast_with_white() -> None:
    ratios = [contrast_ratio(WHITE, fill) for _, fill in HEAT_CLASSES]
    assert ratios == sorted(ratios)
    assert contrast_ratio(BRAND, WHITE) >= 3 and contrast_ratio(INK, WHITE) >= 4.5


def test_shipped_processes_render_as_well_formed_svg() -> None:
    for path in PROCESSES:
        definition = _shipped(path)
        root = _parse(render_diagram(definition, highlight=definition.start, heat={definition.start: 1.0}))
        steps = [g.get("data-step") for g in root.iter(f"{SVG}g") if g.get("data-step")]
        assert sorted(steps) == sorted(definition.steps)
