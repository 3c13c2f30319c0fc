"""Lifecycle definitions, built once into a shared ``transitions.Machine``.

A :class:`LifecycleDefinition` is plain data: states, an initial state, final
states and transitions with guards. :meth:`LifecycleDefinition.build` validates
it and builds one :class:`Lifecycle` per definition (cached), which owns one
``transitions.Machine`` built with ``model=None`` and ``auto_transitions=False``.

Aggregates are never registered with the machine: :meth:`Lifecycle.fire` calls
``machine.events[trigger].trigger(aggregate)``, which reads and writes only the
aggregate's ``state`` attribute and keeps no reference to it. Guards are plain
callables taking the aggregate and returning ``bool``; there are no callbacks
with side effects, because transitions cannot roll back a callback that raises.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from attrs import field, frozen
from transitions import EventData, Machine

from orderkit.errors import InvalidTransition, LifecycleDefinitionError, TransitionBlocked

__all__ = ["Guard", "HasState", "Lifecycle", "LifecycleDefinition", "TransitionSpec"]

Guard = Callable[[Any], bool]
"""A guard takes the aggregate and returns True when the transition may happen.

Its docstring's first line (or else its name) is shown in diagrams and in
:class:`TransitionBlocked` messages, so write it as a condition: "no holds".
"""


class HasState(Protocol):
    """What a lifecycle needs of an aggregate: an ``id`` and a writable ``state``."""

    id: str
    state: str


def describe_guard(guard: Guard) -> str:
    """The human text of a guard: its docstring's first line, else its name."""
    doc = (getattr(guard, "__doc__", None) or "").strip()
    if doc:
        return doc.splitlines()[0].rstrip(".")
    return getattr(guard, "__name__", repr(guard))


def _as_tuple(value: str | Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _guards(value: Iterable[Guard]) -> tuple[Guard, ...]:
    return tuple(value)


def _specs(value: Iterable[TransitionSpec]) -> tuple[TransitionSpec, ...]:
    return tuple(value)


def _names(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


@frozen
class TransitionSpec:
    """One edge: ``trigger`` moves an aggregate from any of ``sources`` to ``dest``."""

    trigger: str
    sources: tuple[str, ...] = field(converter=_as_tuple)
    dest: str
    guards: tuple[Guard, ...] = field(default=(), converter=_guards)


@frozen
class LifecycleDefinition:
    """The state graph of one kind of aggregate; data only, validated when built.

    Extend a definition with :meth:`extend` rather than forking it; the result
    is a new definition (this one is unchanged).
    """

    aggregate: str
    states: tuple[str, ...] = field(converter=_as_tuple)
    initial: str
    final: frozenset[str] = field(converter=_names)
    transitions: tuple[TransitionSpec, ...] = field(converter=_specs)

    def extend(
        self,
        *,
        states: Sequence[str] = (),
        final: Sequence[str] = (),
        transitions: Sequence[TransitionSpec] = (),
        guards: Mapping[str, Sequence[Guard]] | None = None,
    ) -> LifecycleDefinition:
        """Return a new definition with extra states, final states, transitions and guards.

        ``guards`` maps an existing trigger name to extra guards that every
        transition of that trigger must pass. Raises
        :class:`LifecycleDefinitionError` for a guard on an unknown trigger or a
        state added twice; the rest is checked by :meth:`build`.
        """
        duplicated = sorted(set(states) & set(self.states))
        if duplicated:
            raise LifecycleDefinitionError(
                f"{self.aggregate} lifecycle already has state(s) {duplicated}"
            )
        extra_guards = dict(guards or {})
        known = {spec.trigger for spec in (*self.transitions, *transitions)}
        unknown = sorted(set(extra_guards) - known)
        if unknown:
            raise LifecycleDefinitionError(
                f"{self.aggregate} lifecycle has no trigger(s) {unknown} to guard"
            )
        specs = tuple(
            TransitionSpec(
                spec.trigger,
                spec.sources,
                spec.dest,
                (*spec.guards, *extra_guards.get(spec.trigger, ())),
            )
            for spec in (*self.transitions, *transitions)
        )
        return LifecycleDefinition(
            aggregate=self.aggregate,
            states=(*self.states, *states),
            initial=self.initial,
            final=self.final | frozenset(final),
            transitions=specs,
        )

    def build(self) -> Lifecycle:
        """Validate this definition and return its (cached) :class:`Lifecycle`.

        Raises :class:`LifecycleDefinitionError` when a transition or the
        initial or a final state names an unknown state, a state is listed
        twice, a state is unreachable from the initial state, a final state has
        outgoing transitions, or a non-final state cannot reach a final state.
        """
        return _build(self)

    def triggers(self) -> tuple[str, ...]:
        """Every trigger name, in definition order, without repeats."""
        return tuple(dict.fromkeys(spec.trigger for spec in self.transitions))


def _validate(definition: LifecycleDefinition) -> None:
    name = definition.aggregate
    states = definition.states
    if len(set(states)) != len(states):
        raise LifecycleDefinitionError(f"{name} lifecycle lists a state twice: {states}")
    known = set(states)
    mentioned = {definition.initial, *definition.final}
    for spec in definition.transitions:
        mentioned.update(spec.sources)
        mentioned.add(spec.dest)
    unknown = sorted(mentioned - known)
    if unknown:
        raise LifecycleDefinitionError(f"{name} lifecycle uses unknown state(s) {unknown}")
    if not definition.final:
        raise LifecycleDefinitionError(f"{name} lifecycle has no final state")
    edges = _edges(definition)
    leaving_final = sorted(state for state in definition.final if edges[state])
    if leaving_final:
        raise LifecycleDefinitionError(
            f"{name} lifecycle has transitions out of final state(s) {leaving_final}"
        )
    reachable = _closure({definition.initial}, edges)
    unreachable = [state for state in states if state not in reachable]
    if unreachable:
        raise LifecycleDefinitionError(
            f"{name} lifecycle has state(s) {unreachable} unreachable from {definition.initial!r}"
        )
    reverse: dict[str, set[str]] = {state: set() for state in states}
    for source, dests in edges.items():
        for dest in dests:
            reverse[dest].add(source)
    can_finish = _closure(set(definition.final), reverse)
    stuck = [state for state in states if state not in can_finish]
    if stuck:
        raise LifecycleDefinitionError(
            f"{name} lifecycle has state(s) {stuck} that can never reach a final state"
        )


def _edges(definition: LifecycleDefinition) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {state: set() for state in definition.states}
    for spec in definition.transitions:
        for source in spec.sources:
            edges[source].add(spec.dest)
    return edges


def _edge_label(spec: TransitionSpec) -> str:
    if not spec.guards:
        return spec.trigger
    return f"{spec.trigger} [{', '.join(describe_guard(g) for g in spec.guards)}]"


def _closure(start: set[str], edges: Mapping[str, set[str]]) -> set[str]:
    seen = set(start)
    frontier = list(start)
    while frontier:
        for nxt in edges[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return seen


def _condition(guard: Guard) -> Callable[[EventData], bool]:
    def check(event: EventData) -> bool:
        return bool(guard(event.model))

    return check


@functools.lru_cache(maxsize=64)
def _build(definition: LifecycleDefinition) -> Lifecycle:
    _validate(definition)
    return Lifecycle(definition)


class Lifecycle:
    """A validated definition and its one shared machine.

    Get one from :meth:`LifecycleDefinition.build`; never build it per aggregate.
    """

    __slots__ = ("_ahead", "_events", "_guards", "_machine", "definition")

    def __init__(self, definition: LifecycleDefinition) -> None:
        self.definition = definition
        self._machine = Machine(
            model=None,
            states=list(definition.states),
            initial=definition.initial,
            transitions=[
                {
                    "trigger": spec.trigger,
                    "source": list(spec.sources),
                    "dest": spec.dest,
                    "conditions": [_condition(guard) for guard in spec.guards],
                }
                for spec in definition.transitions
            ],
            auto_transitions=False,
            send_event=True,
        )
        self._events = self._machine.events
        self._ahead: dict[str, frozenset[str]] = {}
        self._guards: dict[tuple[str, str], tuple[Guard, ...]] = {}
        for spec in definition.transitions:
            for source in spec.sources:
                self._guards.setdefault((spec.trigger, source), spec.guards)

    def fire(self, aggregate: HasState, trigger: str) -> None:
        """Move ``aggregate`` along ``trigger``, writing only its ``state``.

        Raises :class:`InvalidTransition` when the trigger is unknown or not
        allowed from the current state, and :class:`TransitionBlocked` when a
        guard refuses; in both cases the aggregate is unchanged.
        """
        state = aggregate.state
        event = self._events.get(trigger)
        if event is None:
            known = ", ".join(self.definition.triggers())
            raise InvalidTransition(
                self.definition.aggregate,
                aggregate.id,
                state,
                trigger,
                f"is not a trigger of this lifecycle (it has: {known})",
            )
        if state not in event.transitions:
            raise InvalidTransition(self.definition.aggregate, aggregate.id, state, trigger)
        if not event.trigger(aggregate):
            failed = next(
                (g for g in self._guards.get((trigger, state), ()) if not g(aggregate)),
                None,
            )
            reason = describe_guard(failed) if failed is not None else "a guard refused"
            raise TransitionBlocked(self.definition.aggregate, aggregate.id, state, trigger, reason)

    def can_fire(self, aggregate: HasState, trigger: str) -> bool:
        """True when ``trigger`` is allowed from the aggregate's state and its guards pass."""
        guards = self._guards.get((trigger, aggregate.state))
        if guards is None:
            return False
        return all(guard(aggregate) for guard in guards)

    def triggers_from(self, state: str) -> tuple[str, ...]:
        """The triggers defined from ``state`` (guards not evaluated)."""
        return tuple(trigger for trigger, source in self._guards if source == state)

    def leads_to(self, state: str, trigger: str) -> bool:
        """True when ``trigger`` can still fire from ``state`` or from a state reachable from it."""
        ahead = self._ahead.get(state)
        if ahead is None:
            if state not in self.definition.states:
                return False
            reachable = _closure({state}, _edges(self.definition))
            ahead = frozenset(
                spec.trigger
                for spec in self.definition.transitions
                if reachable.intersection(spec.sources)
            )
            self._ahead[state] = ahead
        return trigger in ahead

    def is_final(self, state: str) -> bool:
        """True when ``state`` is one of the definition's final states."""
        return state in self.definition.final

    def to_mermaid(self) -> str:
        """The state graph as a mermaid ``stateDiagram-v2``; guards are shown in brackets."""
        lines = ["stateDiagram-v2", f"    [*] --> {self.definition.initial}"]
        for spec in self.definition.transitions:
            label = _edge_label(spec)
            lines.extend(f"    {source} --> {spec.dest} : {label}" for source in spec.sources)
        lines.extend(
            f"    {state} --> [*]"
            for state in self.definition.states
            if state in self.definition.final
        )
        return "\n".join(lines) + "\n"

    def to_dot(self) -> str:
        """The state graph as Graphviz DOT text (render it with ``dot -Tsvg``)."""
        name = self.definition.aggregate
        final = self.definition.final
        lines = [f'digraph "{name}" {{', "    rankdir=LR;", '    "__start" [shape=point];']
        lines.extend(
            f'    "{state}" [shape={"doublecircle" if state in final else "circle"}];'
            for state in self.definition.states
        )
        lines.append(f'    "__start" -> "{self.definition.initial}";')
        for spec in self.definition.transitions:
            label = _edge_label(spec)
            lines.extend(
                f'    "{source}" -> "{spec.dest}" [label="{label}"];' for source in spec.sources
            )
        lines.append("}")
        return "\n".join(lines) + "\n"
