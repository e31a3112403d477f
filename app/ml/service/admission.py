"""Who may add work to the model worker now: a budget of compute units in flight (app/ml/service/cost.py), per client
and in all, checked when a job arrives so that a job over its share is refused at once (ServiceBusy: 503 with
Retry-After upstream) instead of waiting behind everyone else's.

A client may always have one job in flight, whatever it costs: an honest player has one round at a time, and the
dearest round the game offers (HopSkipJump against Defense-GAN, ~1,500 units) must not be refused for its price
alone. Beyond that one job, a client's units in flight stay within ``per_client``. The server's own work (client "")
is held to the global budget only. Plain Python, no torch."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from app.errors import ServiceBusy
from app.messages import SERVICE_BUSY
from app.ml.service.cost import DEFAULT_ROUND_UNITS

# 200 honest players with one default round (PGD-20 on fashion-cnn, 20 units) each in flight: 4,000 units, about
# 16 s of the reference CPU's worker batched (3.95 ms a unit), within the 30 s service timeout.
DEFAULT_GLOBAL_UNITS = 200 * DEFAULT_ROUND_UNITS
# A second and third default round may wait behind a client's first (say, a player who opened two tabs).
DEFAULT_PER_CLIENT_UNITS = 3 * DEFAULT_ROUND_UNITS
SERVER_CLIENT = ""


@dataclass(frozen=True)
class Ticket:
    """Units held for one admitted job, until it ran or was dropped."""

    client: str
    units: float


class AdmissionBudget:
    def __init__(
        self, *, global_units: float = DEFAULT_GLOBAL_UNITS, per_client_units: float = DEFAULT_PER_CLIENT_UNITS
    ):
        self.global_units = global_units
        self.per_client_units = per_client_units
        self.in_flight = 0.0
        self._by_client: dict[str, float] = defaultdict(float)
        self._jobs_by_client: dict[str, int] = defaultdict(int)
        self.refused = 0

    def admit(self, client: str, units: float) -> Ticket:
        """Hold ``units`` for ``client``, or raise ServiceBusy when that would pass its share or the global budget."""
        over_global = self.in_flight + units > self.global_units and self.in_flight > 0
        first_job = self._jobs_by_client.get(client, 0) == 0
        over_share = (
            client != SERVER_CLIENT
            and not first_job
            and self._by_client.get(client, 0.0) + units > self.per_client_units
        )
        if over_global or over_share:
            self.refused += 1
            raise ServiceBusy(SERVICE_BUSY)
        self.in_flight += units
        self._by_client[client] += units
        self._jobs_by_client[client] += 1
        return Ticket(client, units)

    def release(self, ticket: Ticket) -> None:
        self.in_flight = max(0.0, self.in_flight - ticket.units)
        self._jobs_by_client[ticket.client] -= 1
        if self._jobs_by_client[ticket.client] <= 0:
            del self._jobs_by_client[ticket.client]
            self._by_client.pop(ticket.client, None)
        else:
            self._by_client[ticket.client] -= ticket.units

    @property
    def clients(self) -> int:
        """How many clients have jobs admitted and not yet done."""
        return len(self._jobs_by_client)

    def holds_other_than(self, client: str) -> bool:
        """Whether anyone but ``client`` has a job admitted and not done."""
        return any(name != client for name in self._jobs_by_client)

    def units_of(self, client: str) -> float:
        return self._by_client.get(client, 0.0)
