"""Compiling a definition into a ``transitions`` state machine, and firing it.

This is the only module that imports ``transitions``. A machine is compiled once
per definition version and shared by every case of that version: it is created
with ``model=None`` and events are triggered with the case as the model, so no
per-case methods are attached (no ``add_model``, nothing to clean up, nothing to
leak) and the machine holds no per-case state, which makes it safe to share
between threads. ``auto_transitions=False``: a municipal process must not get a
``to_<step>()`` jump into every step.
"""

from __future__ import annotations

from typing import Any

from transitions import Machine, MachineError

from engine import conditions
from engine.case import Case
from engine.definition import ProcessDefinition
from engine.errors import ActionNotAllowed, ActionUnavailable, Reason


class CompiledProcess:
    """A definition plus its shared state machine.

    Args:
        definition: A validated definition.
    """

    def __init__(self, definition: ProcessDefinition) -> None:
        self.definition = definition
        self.predicates: dict[tuple[str, str], conditions.Predicate] = {}
        transitions: list[dict[str, Any]] = []
        for step in definition.steps.values():
            for action in step.actions.values():
                spec: dict[str, Any] = {"trigger": action.name, "source": step.id, "dest": action.next}
                if action.when is not None:
                    predicate = conditions.compile_condition(action.when)
                    self.predicates[(step.id, action.name)] = predicate
                    spec["conditions"] = [_condition(predicate)]
                transitions.append(spec)
        self.machine = Machine(
            model=None,
            states=list(definition.steps),
            initial=definition.start,
            transitions=transitions,
            auto_transitions=False,
            ignore_invalid_triggers=False,
            send_event=True,
            model_attribute="step",
        )

    def condition_holds(self, step: str, action: str, data: dict[str, Any]) -> bool:
        """Whether the action's condition holds for ``data`` (True if it has none)."""
        predicate = self.predicates.get((step, action))
        return predicate is None or predicate(data)

    def fire(self, case: Case, action: str) -> str:
        """Move ``case`` along ``action``; returns the new step (unchanged for actions without ``next``).

        Raises:
            ActionNotAllowed: The current step has no such action.
            ActionUnavailable: The action's condition does not hold.
        """
        event = self.machine.events.get(action)
        if event is None or case.step not in event.transitions:
            allowed = tuple(self.definition.steps[case.step].actions)
            raise ActionNotAllowed(case.id, action, case.step, allowed)
        try:
            moved = event.trigger(case)
        except MachineError as exc:  # pragma: no cover - guarded by the check above
            allowed = tuple(self.definition.steps[case.step].actions)
            raise ActionNotAllowed(case.id, action, case.step, allowed) from exc
        if not moved:
            raise ActionUnavailable(case.id, action, (self.condition_reason(case.step, action, case.data),))
        return case.step

    def condition_reason(self, step: str, action: str, data: dict[str, Any] | None = None) -> Reason:
        """The reason to show when the condition of ``action`` in ``step`` does not hold for ``data``."""
        definition = self.definition
        when = definition.steps[step].actions[action].when or {}
        labels = {name: f.label for name, f in definition.fields.items()}
        labels_en = {name: f.label_en or f.label for name, f in definition.fields.items()}
        values = {name: f.values for name, f in definition.fields.items() if f.values}
        text = conditions.describe(when, labels, values=values, data=data)
        text_en = conditions.describe(when, labels_en, english=True, values=values, data=data)
        return Reason("condition", f"Bedingung nicht erfüllt: {text}", f"condition not met: {text_en}")

    def diagram(self) -> str:
        """The process as a Mermaid state diagram (German titles, final steps marked)."""
        d = self.definition
        lines = ["stateDiagram-v2", f"    %% {d.ref}: {d.title}"]
        for step in d.steps.values():
            label = step.title.replace('"', "'")
            agency = f" ({step.agency})" if step.agency else ""
            lines.append(f'    state "{label}{agency}" as {step.id}')
        lines.append(f"    [*] --> {d.start}")
        for step in d.steps.values():
            for action in step.actions.values():
                title = action.title.replace(":", " ")
                target = action.next or step.id
                lines.append(f"    {step.id} --> {target}: {title}")
            if step.final:
                lines.append(f"    {step.id} --> [*]")
        return "\n".join(lines) + "\n"


def _condition(predicate: conditions.Predicate) -> Any:
    def check(event: Any) -> bool:
        return predicate(event.model.data)

    return check


__all__ = ["CompiledProcess"]
