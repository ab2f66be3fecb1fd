"""Run one planned step as Infusionsoft calls, through the action table (``actions``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.delivery.actions import ACTIONS, NO_CONTACT, KeapActions, StepInput
from app.domain.events import StepRecord
from app.keap.client import CallContext
from app.keap.errors import KeapPermanentError


async def run_step(
    client: KeapActions,
    step: StepRecord,
    contact_id: int | None,
    earlier: Mapping[int, Any],
    ctx: CallContext,
) -> dict[str, Any]:
    """Make the step's calls; return what to store as its result. ``earlier``: the
    results of the event's finished steps, by index (a payment needs its order's id)."""
    spec = ACTIONS.get(step.action)
    if contact_id is None and (spec is None or spec.needs_contact):
        raise KeapPermanentError(step.action, NO_CONTACT)
    if spec is None:
        raise KeapPermanentError(step.action, f"unknown action {step.action!r}")
    return await spec.call(client, StepInput(step.action, step.params, contact_id, earlier, ctx))
