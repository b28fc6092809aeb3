"""How the league's data reads on pages, in the API and in CSV: racer names, lap and score times, lap tables
with penalties, leaderboard rows, the run summary and the bracket's cards, columns and states.

Plain dicts of display values, built in one place so a page and the API never word the same thing twice.
Times are written by ``sim.race.scoring.format_lap_time`` (the simulator's own format).
"""

from __future__ import annotations

import io
import keyword
import tokenize
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from races.models import BracketMatch, LeaderboardEntry, Race, RacePhase, Run, Submission, SubmissionEvent

# The module, not its names: brackets -> leaderboards -> presenters -> brackets is a cycle at import time (the
# leaderboard builds its rows here), so the bracket rules are looked up when a bracket is presented.
from races.services import brackets
from races.services.race_settings import race_box_corners
from sim.race.scoring import format_lap_time
from sim.world.vehicle import NEURAL_NETWORKS


class BracketState(StrEnum):
    """Where a race's knockout bracket stands (``bracket_summary``; the race page words each one)."""

    NONE = "none"  # not a head-to-head race
    QUALIFYING = "qualifying"  # the race is not closed yet: its board is the seeding board
    STARTING = "starting"  # closed: waiting for the last qualifying runs, or for the worker's tick
    TOO_FEW = "too_few"  # closed with fewer than 2 qualifiers: there is nothing to race
    RACING = "racing"
    FINISHED = "finished"


# A bracket card for a match whose racers are not known yet (the winners of the round before).
WAITING_CARD_STATUS = "waiting"


def racer_name(user) -> str:
    """The name a racer is shown under: their alias, or their username until they choose one."""
    return getattr(getattr(user, "racer", None), "alias", user.get_username())


def qualified_score(run: Run | None) -> str | None:
    """The run's ranking score as a time when it qualified, else None (no run yet, or not ranked)."""
    return format_lap_time(run.ranking_score_ms) if run is not None and run.qualified else None


def submission_badge(status: str, qualified: bool | None) -> dict[str, str]:
    """A submission's status badge (``css`` class and ``label``): a scored run that did not qualify reads
    "Not qualified", not a green "Scored"."""
    if status == Submission.Status.SCORED and qualified is False:
        return {"css": "not-qualified", "label": "Not qualified"}
    return {"css": status, "label": Submission.Status(status).label}


def submission_with_history(
    submission: Submission, position: Callable[[Submission], int | None]
) -> tuple[dict[str, Any], list[SubmissionEvent]]:
    """The run page's summary and status history, read so that they agree.

    A worker may move the submission on between the two reads (the page loaded it queued, the history already
    says running): then the row is read again, so the badge never shows an older status than the history.
    """
    for _ in range(3):
        summary = submission_summary(submission, position(submission), include_trace=False)
        events = list(submission.events.all())
        if not events or events[-1].status == submission.status:
            break
        submission.refresh_from_db(fields=["status", "failure_reason", "started_at", "finished_at"])
    qualified = summary["run"]["qualified"] if summary["run"] else None
    for event in events:
        event.badge = submission_badge(event.status, qualified)  # a scored run that did not qualify says so
    return summary, events


def gap_text(gap_ms: int, rank: int) -> str:
    """The gap to the leader as the board shows it (``+0.412``); empty on the leader's row."""
    return f"+{gap_ms / 1000:.3f}" if rank > 1 else ""


def lap_rows(laps: list[dict[str, Any]], race: Race) -> list[dict[str, Any]]:
    """Stored laps (``LapMetrics`` dicts) with their time as text and the penalty seconds the race charged."""
    return [
        lap | {
            "time": format_lap_time(lap["elapsed_time_in_milliseconds"]),
            "penalty_s": lap["off_track_count"] * race.off_track_penalty_s
            + lap["crash_count"] * race.collision_penalty_s,
        }
        for lap in laps
    ]


def ideal_gap_text(gap_ms: int) -> str:
    """A time against the track's ideal lap: ``+1.234`` behind it (``-0.050``: faster than the reference)."""
    return f"{'+' if gap_ms >= 0 else '-'}{abs(gap_ms) / 1000:.3f}"


def leaderboard_reference(reference_ms: int | None, race: Race) -> dict[str, Any] | None:
    """The board's reference line (the track's ideal lap, see ``leaderboard_reference_ms``) as pages show it."""
    if reference_ms is None:
        return None
    total = race.ranking_method == Race.RankingMethodChoice.TOTAL_TIME
    return {
        "time_ms": reference_ms,
        "time": format_lap_time(reference_ms),
        "label": f"Ideal {race.total_laps} laps" if total else "Ideal lap",
    }


def leaderboard_row(rank: int, entry: LeaderboardEntry, leader_ms: int, reference_ms: int | None = None
                    ) -> dict[str, Any]:
    """One board row (API, page and CSV): rank, alias, time, gap to the leader and to the track's ideal lap
    (``reference_ms``, None: no reference), counts."""
    ideal_gap = None if reference_ms is None else entry.ranking_score_ms - reference_ms
    return {
        "rank": rank,
        "racer": racer_name(entry.user),
        "time_ms": entry.ranking_score_ms,
        "time": format_lap_time(entry.ranking_score_ms),
        "gap_ms": entry.ranking_score_ms - leader_ms,
        "gap": gap_text(entry.ranking_score_ms - leader_ms, rank),
        "ideal_gap_ms": ideal_gap,
        "ideal_gap": "" if ideal_gap is None else ideal_gap_text(ideal_gap),
        "best_lap_ms": entry.best_lap_ms,
        "off_track_count": entry.off_track_count,
        "reset_count": entry.reset_count,
        "crash_count": entry.crash_count,
        "laps": entry.laps_completed,
        "submission_count": entry.submission_count or 0,
        "submission_id": entry.submission_id,
        "submitted_at": entry.submitted_at.isoformat(),
    }


def submission_summary(
    submission: Submission, position: int | None = None, include_trace: bool = True
) -> dict[str, Any]:
    """Status, queue position and, once scored, the lap table and score (API and live page share it)."""
    run = Run.objects.filter(submission=submission).first()
    summary: dict[str, Any] = {
        "id": submission.pk,
        "race": submission.race.slug,
        "racer": racer_name(submission.user),
        "model": submission.model.name,
        "sequence": submission.sequence,
        "status": submission.status,
        "queue_position": position if submission.status == Submission.Status.QUEUED else None,
        "failure_reason": submission.failure_reason,
        "submitted_at": submission.submitted_at.isoformat(),
        "started_at": submission.started_at.isoformat() if submission.started_at else None,
        "finished_at": submission.finished_at.isoformat() if submission.finished_at else None,
        "run": None,
        "badge": submission_badge(submission.status, run.qualified if run is not None else None),
    }
    if run is not None:
        race = submission.race
        summary["run"] = {
            "qualified": run.qualified,
            "ranking_score_ms": run.ranking_score_ms,
            "ranking_score": format_lap_time(run.ranking_score_ms),
            "score": run.score,
            "laps": lap_rows(run.laps, race),
            "duration_s": run.duration_s,
        }
        if include_trace:
            summary["run"]["trace"] = run.trace
            summary["run"]["boxes"] = [corners.round(3).tolist() for corners in race_box_corners(race)]
    return summary


def bracket_round_name(number: int, rounds: int) -> str:
    """``Final``, ``Semi-finals``, ``Quarter-finals``, else ``Round <number>``."""
    left = rounds - number
    return {0: "Final", 1: "Semi-finals", 2: "Quarter-finals"}.get(left, f"Round {number}")


def bracket_match_title(match: BracketMatch) -> str:
    """The name of the round ``match`` is in, counted on its race's whole bracket."""
    return bracket_round_name(match.round, brackets.bracket_round_count(list(brackets.bracket_matches(match.race))))


def bracket_match_card(match: BracketMatch) -> dict[str, Any]:
    """What a bracket card shows: seeds, aliases, winner, race times (no traces)."""
    standings = ((match.result or {}).get("outcome") or {}).get("standings") or [None, None]
    cars = []
    for index, (user, seed) in enumerate(((match.racer_a, match.seed_a), (match.racer_b, match.seed_b))):
        if user is None:
            cars.append({"seed": None, "racer": None, "bye": True, "winner": False, "time": "", "laps": None})
            continue
        standing = standings[index] or {}
        cars.append({
            "seed": seed,
            "racer": racer_name(user),
            "bye": False,
            "winner": match.winner_id == user.pk,
            "time_ms": standing.get("race_time_ms"),
            "time": format_lap_time(standing.get("race_time_ms")) if standing.get("race_time_ms") else "",
            "laps": standing.get("completed_laps"),
        })
    outcome = (match.result or {}).get("outcome") or {}
    return {
        "id": match.pk,
        "round": match.round,
        "slot": match.slot,
        "status": match.status,
        "reason": outcome.get("reason") or ("forfeit" if (match.result or {}).get("forfeit") is not None else ""),
        "winner": next((car["racer"] for car in cars if car["winner"]), None),
        "cars": cars,
        "failure_reason": match.failure_reason if match.status == BracketMatch.Status.FAILED else "",
    }


def bracket_rounds(race: Race) -> list[dict[str, Any]]:
    """The bracket for display: one column per round, each with its match cards (placeholders for matches
    whose racers are not known yet). Empty before the bracket starts."""
    matches = list(brackets.bracket_matches(race))
    if not matches:
        return []
    rounds = brackets.bracket_round_count(matches)
    by_position = {(m.round, m.slot): m for m in matches}
    columns = []
    for number in range(1, rounds + 1):
        cards = []
        for slot in range(2 ** (rounds - number)):
            match = by_position.get((number, slot))
            cards.append(bracket_match_card(match) if match else {
                "round": number, "slot": slot, "status": WAITING_CARD_STATUS, "id": None, "cars": []})
        columns.append({"round": number, "name": bracket_round_name(number, rounds), "matches": cards})
    return columns


def bracket_match_detail(match: BracketMatch, include_trace: bool = True) -> dict[str, Any]:
    """A match page / API document: the card plus both cars' lap tables (and traces for the replay)."""
    card = bracket_match_card(match)
    race = match.race
    result = match.result or {}
    for index, car in enumerate(card["cars"]):
        stored = (result.get("cars") or [None, None])[index] or {}
        car["lane"] = (result.get("lanes") or [None, None])[index]
        car["laps"] = lap_rows(stored.get("laps", []), race)
        if include_trace:
            car["trace"] = stored.get("trace") or {}
    card["race"] = race.slug
    card["round_name"] = bracket_match_title(match)
    return card


def bracket_state(race: Race, rounds: list[dict[str, Any]], champion) -> BracketState:
    """The bracket's state from its ``bracket_rounds`` and ``bracket_champion``."""
    if race.race_type != Race.RaceType.HEAD_TO_HEAD:
        return BracketState.NONE
    if rounds:
        return BracketState.FINISHED if champion is not None else BracketState.RACING
    if race.phase() != RacePhase.CLOSED:
        return BracketState.QUALIFYING
    if race.submissions.filter(status__in=brackets.UNFINISHED_SUBMISSIONS).exists() or race.leaderboard.count() >= 2:
        return BracketState.STARTING
    return BracketState.TOO_FEW


def bracket_summary(race: Race) -> dict[str, Any]:
    """The bracket of a head-to-head race for the API and the race page: state, champion and rounds."""
    rounds = bracket_rounds(race)
    champion = brackets.bracket_champion(race)
    return {
        "race": race.slug,
        "state": bracket_state(race, rounds, champion),
        "bracket_size": race.bracket_size,
        "champion": racer_name(champion) if champion is not None else None,
        "rounds": rounds,
    }


# --- models ---------------------------------------------------------------------------------------------------
SENSOR_WORDS = {
    "FRONT_FACING_CAMERA": "front-facing camera",
    "STEREO_CAMERAS": "stereo cameras",
    "LIDAR": "lidar",
    "SECTOR_LIDAR": "sector lidar",
}
# DeepRacer's hyperparameters.json keys as the console words them (our own names too, for our JSON files).
HYPERPARAMETER_WORDS = {
    "batch_size": "Gradient descent batch size",
    "beta_entropy": "Entropy", "entropy": "Entropy",
    "discount_factor": "Discount factor",
    "loss_type": "Loss type",
    "lr": "Learning rate", "learning_rate": "Learning rate",
    "num_episodes_between_training": "Episodes between policy updates",
    "episodes_between_training": "Episodes between policy updates",
    "num_epochs": "Number of epochs",
    "clip_epsilon": "PPO clip ε",
    "gae_lambda": "GAE λ",
    "max_iteration_steps": "Max env steps per iteration",
    "e_greedy_value": "Exploration ε",
    "epsilon_steps": "Exploration steps",
    "exploration_type": "Exploration",
    "stack_size": "Frame stack",
    "exported_iteration": "Exported iteration",
}


def sensor_words(sensors: list[str]) -> str:
    """``["FRONT_FACING_CAMERA", "LIDAR"]`` -> ``front-facing camera and lidar``."""
    words = [SENSOR_WORDS.get(sensor, sensor.replace("_", " ").lower()) for sensor in sensors]
    return " and ".join(filter(None, [", ".join(words[:-1]), words[-1]])) if words else "—"


def network_words(network: str) -> str:
    """``DEEP_CONVOLUTIONAL_NETWORK_SHALLOW`` -> ``3-layer CNN`` (the console's names)."""
    return NEURAL_NETWORKS.get(network, network.replace("_", " ").lower() or "—")


def duration_words(seconds: float | None) -> str:
    """``4000`` -> ``1 h 6 min``; ``95`` -> ``1 min 35 s``."""
    if seconds is None:
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def model_summary(model, contents: dict[str, Any]) -> dict[str, Any]:
    """A model page's facts in words: vehicle (sensors, network, actions), and what its archive holds
    (``racer_models.model_contents``): the reward function (highlighted), hyperparameters, training time."""
    metadata = model.metadata or {}
    hyperparameters = contents.get("hyperparameters") or {}
    source = contents.get("reward_function_source")
    return {
        "sensors": sensor_words(list(metadata.get("sensor") or [])),
        "network": network_words(str(metadata.get("neural_network") or "")),
        "network_id": str(metadata.get("neural_network") or ""),
        "action_space_type": metadata.get("action_space_type") or "discrete",
        "parameter_count": contents.get("parameter_count"),
        "reward_function_html": python_highlight(source) if source else None,
        "reward_function_source": source or "",
        "has_reward_graph": bool(contents.get("reward_graph")),
        "hyperparameters": [
            {"key": key, "label": HYPERPARAMETER_WORDS.get(key, key.replace("_", " ").capitalize()), "value": value}
            for key, value in hyperparameters.items()
        ],
        "training_time": duration_words(contents.get("training_seconds"))
        if contents.get("training_seconds") is not None else None,
        "error": contents.get("error", ""),
    }


_BUILTINS = {"abs", "min", "max", "len", "range", "float", "int", "round", "sum", "math", "print", "bool", "list",
             "dict", "enumerate", "zip", "sorted", "any", "all", "str", "tuple", "set", "isinstance"}


def python_highlight(source: str) -> SafeString:
    """Python source as escaped HTML with ``<span class="tok-...">`` around keywords, strings, comments, numbers,
    names being defined and common builtins. The standard library's tokenizer reads the text (it is never run);
    text it cannot tokenize is shown plain."""
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    spans, previous = [], None
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            kind = _token_class(token, previous)
            if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.COMMENT):
                previous = token
            if kind is None or token.start[0] > len(lines) or token.end[0] > len(lines):
                continue
            start = offsets[token.start[0] - 1] + token.start[1]
            end = offsets[token.end[0] - 1] + token.end[1]
            spans.append((start, end, kind))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        spans = []
    parts, cursor = [], 0
    for start, end, kind in spans:
        if start < cursor:
            continue
        parts.append(escape(source[cursor:start]))
        parts.append(f'<span class="tok-{kind}">{escape(source[start:end])}</span>')
        cursor = end
    parts.append(escape(source[cursor:]))
    return mark_safe("".join(parts))  # every piece of the source went through escape()


def _token_class(token: tokenize.TokenInfo, previous: tokenize.TokenInfo | None) -> str | None:
    if token.type == tokenize.COMMENT:
        return "comment"
    if token.type == tokenize.STRING or token.type == getattr(tokenize, "FSTRING_START", -1):
        return "string"
    if token.type == tokenize.NUMBER:
        return "number"
    if token.type == tokenize.NAME:
        if previous is not None and previous.type == tokenize.NAME and previous.string in ("def", "class"):
            return "def"
        if keyword.iskeyword(token.string) or token.string in ("True", "False", "None"):
            return "keyword"
        if token.string in _BUILTINS:
            return "builtin"
    return None
