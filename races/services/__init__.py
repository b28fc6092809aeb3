"""Business rules of the league, as plain functions named ``<entity>_<action>``.

Views, the API, the admin, management commands and the evaluator's actors all call these.
"""

from races.services.errors import RuleViolation
from races.services.leaderboards import (
    leaderboard_csv,
    leaderboard_offer,
    leaderboard_recompute,
    leaderboard_rows,
    leaderboard_table,
    leaderboard_top,
)
from races.services.racer_models import model_delete, model_upload, models_of
from races.services.races import (
    PHASES,
    participant_remove,
    race_by_invite_code,
    race_clone,
    race_close_early,
    race_create,
    race_delete,
    race_invite_path,
    race_is_member,
    race_join,
    race_reset_invite_code,
    race_update,
    race_validate_settings,
    race_visible_to,
    races_by_phase,
    races_in_phase,
)
from races.services.runs import run_discard, run_trajectory_png, submission_summary
from races.services.submissions import (
    submission_allowance,
    submission_create,
    submission_disqualify,
    submission_fail,
    submission_mark_running,
    submission_record_result,
    submission_requeue,
    submission_rerun,
)
from races.services.tracks import (
    track_import,
    track_install_builtins,
    track_outline,
    track_parse_route,
    track_preview,
    track_sim,
)

__all__ = [
    "PHASES",
    "RuleViolation",
    "leaderboard_csv",
    "leaderboard_offer",
    "leaderboard_recompute",
    "leaderboard_rows",
    "leaderboard_table",
    "leaderboard_top",
    "model_delete",
    "model_upload",
    "models_of",
    "participant_remove",
    "race_by_invite_code",
    "race_clone",
    "race_close_early",
    "race_create",
    "race_delete",
    "race_invite_path",
    "race_is_member",
    "race_join",
    "race_reset_invite_code",
    "race_update",
    "race_validate_settings",
    "race_visible_to",
    "races_by_phase",
    "races_in_phase",
    "run_discard",
    "run_trajectory_png",
    "submission_allowance",
    "submission_create",
    "submission_disqualify",
    "submission_fail",
    "submission_mark_running",
    "submission_record_result",
    "submission_requeue",
    "submission_rerun",
    "submission_summary",
    "track_import",
    "track_install_builtins",
    "track_outline",
    "track_parse_route",
    "track_preview",
    "track_sim",
]
