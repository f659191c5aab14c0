"""Scores recorded beside a checkpoint: scores.json merges suites, the card keeps one scores section."""

import json

from t2v.eval.record import record_scores

SHAPES = {"seen": {"count": 100, "colour": 1.0, "shape": 0.9, "size": 0.95, "motion": 0.9, "all_right": 0.85,
                   "ci95": {"all_right": [0.77, 0.91]}}}
SPEED = {"seconds_per_video": 0.8, "video": "16x64x64", "threads": 2, "cpu": "x86_64", "peak_rss_mb": 900.0}


def test_record_merges_suites_and_rewrites_one_section(tmp_path):
    (tmp_path / "README.md").write_text("# my model\n\n- command: `t2v train videogpt`\n")
    record_scores(tmp_path, {"model": "m", "shapes": SHAPES}, "t2v eval m --suite shapes")
    record_scores(tmp_path, {"model": "m", "speed": SPEED}, "t2v eval m --suite speed")
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["summary"] == {"seen all-right": 0.85, "s/video": 0.8}
    assert set(scores["suites"]) == {"shapes", "speed"}
    card = (tmp_path / "README.md").read_text()
    assert card.startswith("# my model\n\n- command: `t2v train videogpt`")
    assert card.count("## Measured scores") == 1
    assert "**85.0%** [77.0%, 91.0%]" in card and "0.800 s per 16x64x64 video" in card


def test_a_command_measured_again_piece_by_piece_is_no_longer_listed(tmp_path):
    record_scores(tmp_path, {"model": "m", "shapes": SHAPES, "speed": SPEED}, "t2v eval m --suite shapes --suite speed")
    record_scores(tmp_path, {"model": "m", "shapes": SHAPES}, "t2v eval m --suite shapes")
    assert len(json.loads((tmp_path / "scores.json").read_text())["commands"]) == 2  # its speed is still stored
    record_scores(tmp_path, {"model": "m", "speed": SPEED}, "t2v eval m --suite speed")
    assert json.loads((tmp_path / "scores.json").read_text())["commands"] == ["t2v eval m --suite shapes",
                                                                              "t2v eval m --suite speed"]


def test_what_a_result_says_of_its_run_is_no_suite(tmp_path):
    record_scores(tmp_path, {"model": "m", "family": "dit", "precision": "float32", "speed": SPEED}, "t2v eval m --suite speed")
    assert set(json.loads((tmp_path / "scores.json").read_text())["suites"]) == {"speed"}


def test_a_command_whose_suites_were_all_measured_again_is_no_longer_listed(tmp_path):
    record_scores(tmp_path, {"model": "m", "shapes": SHAPES}, "t2v eval m -n 100")
    record_scores(tmp_path, {"model": "m", "speed": SPEED}, "t2v eval m --suite speed")
    record_scores(tmp_path, {"model": "m", "shapes_best_of_4": SHAPES}, "t2v eval m --candidates 4")
    assert len(json.loads((tmp_path / "scores.json").read_text())["commands"]) == 3
    record_scores(tmp_path, {"model": "m", "shapes": SHAPES, "speed": SPEED}, "t2v eval dir --suite shapes --suite speed")
    commands = json.loads((tmp_path / "scores.json").read_text())["commands"]
    assert commands == ["t2v eval m --candidates 4", "t2v eval dir --suite shapes --suite speed"]
    assert "Measured with `t2v eval m --candidates 4` and `t2v eval dir --suite shapes --suite speed`." \
        in (tmp_path / "README.md").read_text()
