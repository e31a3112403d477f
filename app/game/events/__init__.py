"""Workshop events: a host runs a live session for a room. Settings, join codes, host secrets, the event's
life cycle (lobby → running ⇄ paused → ended), joining, event rounds (own pace or "together") and the checks an
answer must pass. Plain Python: no HTTP, no torch; the model service and the ML catalogue are passed in.

Callers use the package (``from app.game import events; events.join(...)``); the modules below it are one
concern each, and the functions that end a request's work (creating an event, joining, a host action, a round
asked for or answered from a phone) commit it.
"""

from app.game.events.clock import aware, utcnow
from app.game.events.codes import (
    CODE_ALPHABET,
    CODE_LENGTH,
    check_host,
    event_by_code,
    event_by_id,
    hash_secret,
    new_join_code,
    normalise_code,
)
from app.game.events.host import host_action
from app.game.events.joining import (
    check_player_active,
    event_of_player,
    event_players,
    join,
    player_count,
    player_in_event,
    remove_player,
)
from app.game.events.lifecycle import (
    Status,
    create_event,
    current_phase,
    end,
    next_phase,
    pause,
    seconds_left,
    set_locked,
    start,
    status_of,
)
from app.game.events.play import (
    answer_round,
    ask_for_round,
    next_round,
    open_round,
    phone_round,
    rounds_played,
    submit_answer,
)
from app.game.events.prepare import StockProgress, prepare_event, stock_progress
from app.game.events.settings import (
    Catalog,
    EventForm,
    EventSettings,
    Phase,
    Style,
    catalog_from,
    event_settings,
    grey,
    validate_settings,
)
from app.game.events.together import (
    ANSWER_GRACE_S,
    copy_for_player,
    current_shared_round,
    open_shared_round,
    open_until,
    reveals_at,
    shared_is_open,
    shared_round_by_number,
    unattended_changes,
)

__all__ = [
    "ANSWER_GRACE_S",
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "Catalog",
    "EventForm",
    "EventSettings",
    "Phase",
    "Status",
    "StockProgress",
    "Style",
    "answer_round",
    "ask_for_round",
    "aware",
    "catalog_from",
    "check_host",
    "check_player_active",
    "copy_for_player",
    "create_event",
    "current_phase",
    "current_shared_round",
    "end",
    "event_by_code",
    "event_by_id",
    "event_of_player",
    "event_players",
    "event_settings",
    "grey",
    "hash_secret",
    "host_action",
    "join",
    "new_join_code",
    "next_phase",
    "next_round",
    "normalise_code",
    "open_round",
    "open_shared_round",
    "open_until",
    "pause",
    "phone_round",
    "prepare_event",
    "player_count",
    "player_in_event",
    "remove_player",
    "reveals_at",
    "rounds_played",
    "seconds_left",
    "set_locked",
    "shared_is_open",
    "shared_round_by_number",
    "start",
    "status_of",
    "stock_progress",
    "submit_answer",
    "unattended_changes",
    "utcnow",
    "validate_settings",
]
