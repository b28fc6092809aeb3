"""Business rules of the league, as plain functions named ``<entity>_<action>``.

Views, the API, the admin, management commands and the evaluator's actors all call these.
"""

from races.services.brackets import (
    bracket_champion,
    bracket_match_rerun,
    bracket_matches,
    bracket_record_result,
    bracket_start,
    brackets_start_due,
)
from races.services.errors import RuleViolation
from races.services.invites import (
    participant_readmit,
    participant_remove,
    race_by_invite_code,
    race_invite_path,
    race_invite_problem,
    race_join,
    race_reset_invite_code,
)
from races.services.leaderboards import (
    leaderboard_cache_key,
    leaderboard_csv,
    leaderboard_offer,
    leaderboard_recompute,
    leaderboard_rows,
    leaderboard_table,
    leaderboard_top,
)
from races.services.phases import PHASES, races_by_phase, races_in_phase
from races.services.pictures import race_track_picture, run_trajectory_png, track_preview
from races.services.presenters import bracket_match_detail, bracket_rounds, bracket_summary, submission_summary
from races.services.race_settings import race_objects_spec, race_validate_settings
from races.services.racer_models import model_delete, model_upload, models_of
from races.services.races import (
    race_clone,
    race_close_early,
    race_create,
    race_delete,
    race_update,
    races_close_now,
    races_open_now,
)
from races.services.runs import run_discard
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
    track_sim,
    track_update,
)
from races.services.visibility import race_is_member, race_removal, race_visible_to

__all__ = [
    "PHASES",
    "RuleViolation",
    "bracket_champion",
    "bracket_match_detail",
    "bracket_match_rerun",
    "bracket_matches",
    "bracket_record_result",
    "bracket_rounds",
    "bracket_start",
    "bracket_summary",
    "brackets_start_due",
    "leaderboard_cache_key",
    "leaderboard_csv",
    "leaderboard_offer",
    "leaderboard_recompute",
    "leaderboard_rows",
    "leaderboard_table",
    "leaderboard_top",
    "model_delete",
    "model_upload",
    "models_of",
    "participant_readmit",
    "participant_remove",
    "race_by_invite_code",
    "race_clone",
    "race_close_early",
    "race_create",
    "race_delete",
    "race_invite_path",
    "race_invite_problem",
    "race_is_member",
    "race_join",
    "race_objects_spec",
    "race_removal",
    "race_reset_invite_code",
    "race_track_picture",
    "race_update",
    "race_validate_settings",
    "race_visible_to",
    "races_by_phase",
    "races_close_now",
    "races_in_phase",
    "races_open_now",
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
    "track_update",
]
