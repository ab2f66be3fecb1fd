"""The action table's invariants: every relay.yaml action kind runs and is described by
it, and only calls that are safe to repeat are batched across events."""

from __future__ import annotations

from app.config.models import Action
from app.delivery.actions import ACTIONS
from app.delivery.batching import batch_key, calls_per_batch


def test_every_configurable_action_kind_has_its_calls_and_description() -> None:
    for kind in Action.model_fields:
        spec = ACTIONS[kind]
        assert spec.kind == kind
        assert spec.describe is not None, kind


def test_only_repeatable_kinds_are_batched() -> None:
    batched = {kind for kind, spec in ACTIONS.items() if spec.batching is not None}
    assert batched == {"tags", "remove_tags", "sequence", "remove_sequence"}
    assert all(ACTIONS[kind].repeatable for kind in batched)


def test_a_batch_key_joins_the_same_step_of_different_events_only() -> None:
    assert batch_key("tags", {"ids": ["3", 4], "contact_step": 0}) == ("tags", (3, 4))
    assert batch_key("tags", {"ids": [3, 4], "contact_step": 2}) == ("tags", (3, 4))
    assert batch_key("remove_tags", {"ids": [3, 4]}) != batch_key("tags", {"ids": [3, 4]})
    assert batch_key("sequence", {"campaign": 5, "sequence": 6}) == ("sequence", (5, 6))
    assert batch_key("note", {"title": "t", "text": "x"}) is None
    assert calls_per_batch(("tags", (3, 4))) == 2  # one v2 call per tag
    assert calls_per_batch(("sequence", (5, 6))) == 1
