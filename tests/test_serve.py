"""``t2v serve``'s JSON API on the real default model: results, one-line 4xx answers for bad
requests, "busy" when the queue is full, time limits, no paths out of the results folder, cleanup."""

from __future__ import annotations

import io
import json
import math
import threading
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("gradio")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from t2v.errors import T2VError  # noqa: E402
from t2v.serve.app import create_app  # noqa: E402
from t2v.serve.jobs import BUSY, NotFound, ResultStore, TimedOut  # noqa: E402
from t2v.serve.requests import GenerateRequest, parse_request  # noqa: E402
from t2v.serve.service import ServeConfig, Service, checker_verdict  # noqa: E402
from t2v.video import read_video_bytes  # noqa: E402

PROMPT = "a large red circle moving left"


@pytest.fixture(scope="module")
def client():
    """One server for the module; a queue of one waiting request, so the busy test can fill it."""
    with TestClient(create_app(ServeConfig(max_queue=1))) as client:
        yield client


def one_line_error(response, status: int | tuple[int, ...]) -> str:
    assert response.status_code in ((status,) if isinstance(status, int) else status), response.text
    message = response.json()["error"]
    assert message and "\n" not in message
    return message


def test_models_lists_bundled_text_to_video_models_only(client):
    answer = client.get("/models").json()
    names = [m["name"] for m in answer["models"]]
    assert answer["default"] == "dit-shapes" and {"dit-shapes", "videogpt-shapes"} <= set(names)
    assert "fvd-shapes" not in names  # a classifier, not a video model
    videogpt = next(m for m in answer["models"] if m["name"] == "videogpt-shapes")
    assert videogpt["video_shape"] == [16, 64, 64] and videogpt["num_frames"] == [16] and not videogpt["story"]


def test_generate_returns_urls_of_the_mp4_and_contact_sheet(client):
    answer = client.post("/generate", json={"prompt": PROMPT, "seed": 1}).json()
    assert (answer["model"], answer["seed"], answer["num_frames"]) == ("dit-shapes", 1, 16)
    video = client.get(answer["video_url"])
    assert video.headers["content-type"] == "video/mp4"
    frames = read_video_bytes(video.content).frames
    assert frames.shape == (16, 64, 64, 3)
    sheet = client.get(answer["sheet_url"])
    assert sheet.headers["content-type"] == "image/png" and sheet.content.startswith(b"\x89PNG")
    verdict = answer["verdicts"][0]
    assert set(verdict) >= {"colour", "shape", "size", "motion", "all_right", "objects"}
    assert verdict["objects"][0]["asked"] == {"colour": "red", "shape": "circle", "size": "large", "motion": "left"}
    assert checker_verdict(frames, "a dog running in the park") is None  # outside the vocabulary: not judged


def test_answers_say_what_the_model_was_given(client):
    plain = client.post("/generate", json={"prompt": PROMPT, "seed": 1}).json()
    assert plain["model_prompts"] == [PROMPT]  # caption words: not rewritten
    answer = client.post("/generate", json={"prompt": "a huge red ball drifting leftwards", "seed": 1}).json()
    assert answer["prompts"] == ["a huge red ball drifting leftwards"]
    assert answer["model_prompts"] == ["a big red circle moving left"]
    assert answer["verdicts"][0]["objects"][0]["asked"]["shape"] == "circle"  # judged against what the user asked
    from t2v.serve.service import Result
    from t2v.serve.ui import describe

    shown = describe(Result("x", answer["model"], answer["prompts"], 1, 16, 64, 64, 8.0, 0.1, answer["verdicts"],
                            None, None, model_prompts=answer["model_prompts"]))  # the page's text
    assert "Given to the model as *“a big red circle moving left”*" in shown


def test_best_of_n_is_a_video_of_the_prompt(client):
    answer = client.post("/generate", json={"prompt": PROMPT, "seed": 1, "candidates": 2}).json()
    assert answer["num_frames"] == 16 and "verdicts" in answer
    assert "candidates" in next(m for m in client.get("/models").json()["models"]
                                if m["name"] == "videogpt-shapes")["options"]


def test_story_follows_each_prompt_in_turn(client):
    if "phenaki-shapes" not in [m["name"] for m in client.get("/models").json()["models"]]:
        pytest.skip("phenaki-shapes is not bundled")
    story = ["a red circle moving left", "a red circle moving up"]
    answer = client.post("/generate", json={"story": story, "model": "phenaki-shapes", "seed": 0}).json()
    assert answer["prompts"] == story and len(answer["verdicts"]) == 2 and answer["num_frames"] >= 2 * 16 - 1


@pytest.mark.parametrize("body, status, fragment", [
    ({"prompt": ""}, 400, "prompt is empty"),
    ({"prompt": "x" * 100_000}, 413, "larger than"),
    ({"prompt": "x" * 5_000}, 400, "at most 1000"),
    ({"prompt": PROMPT, "model": "no-such-model"}, 400, "unknown model"),
    ({"prompt": PROMPT, "model": "../../etc/passwd"}, 400, "unknown model"),
    ({"prompt": PROMPT, "model": "/etc"}, 400, "unknown model"),
    ({"prompt": PROMPT, "seed": -1}, 400, "non-negative"),
    ({"prompt": PROMPT, "seed": 10**30}, 400, "seed must be at most"),
    ({"prompt": PROMPT, "num_frames": 1000}, 400, "num_frames"),
    ({"prompt": PROMPT, "num_frames": 0}, 400, "num_frames"),
    ({"prompt": PROMPT, "num_frames": 16.5}, 400, "must be an integer"),
    ({"prompt": PROMPT, "seed": True}, 400, "must be an integer"),
    ({"prompt": PROMPT, "model": "videogpt-shapes", "steps": 10}, 400, "does not take steps"),
    ({"prompt": PROMPT, "path": "/etc/passwd"}, 400, "unknown field"),
    ({"story": [PROMPT, PROMPT]}, 400, "cannot follow a story"),
    ({"story": [PROMPT] * 5, "model": "phenaki-shapes"}, 400, "1 to 4 prompts"),
    ({"prompt": PROMPT, "model": "phenaki-shapes", "num_frames": 7}, 400, "1 + k*5 frames"),
    ({"prompt": PROMPT, "model": "phenaki-shapes", "num_frames": 51}, 400, "at most 48 on this server"),
    ({"prompt": PROMPT, "model": "phenaki-shapes", "steps": 1000}, 400, "steps must be 1..100"),
    ({"prompt": PROMPT, "story": [PROMPT]}, 400, "not both"),
    ({"prompt": PROMPT, "candidates": 9}, 400, "candidates must be 1..8"),
    ({"prompt": PROMPT, "candidates": 0}, 400, "candidates must be 1..8"),
    ({"prompt": PROMPT, "candidates": 2.5}, 400, "must be an integer"),
    ({"story": [PROMPT, PROMPT], "model": "phenaki-shapes", "candidates": 2}, 400, "a story is drawn once"),
    ({}, 400, "not both or neither"),
    ([PROMPT], 400, "JSON object"),
])
def test_bad_requests_get_a_one_line_4xx(client, body, status, fragment):
    assert fragment in one_line_error(client.post("/generate", json=body), status)


def test_body_that_is_not_json_or_too_large_in_chunks_is_refused(client):
    assert "JSON object" in one_line_error(client.post("/generate", content=b"prompt=hi"), 400)
    chunks = (b"x" * 8192 for _ in range(20))  # no Content-Length: counted as it arrives
    assert "larger than" in one_line_error(client.post("/generate", content=chunks), 413)


def test_server_keeps_serving_after_bad_requests(client):
    for body in ({"prompt": ""}, {"prompt": PROMPT, "model": "../../etc/passwd"}, {"prompt": PROMPT, "seed": -5}):
        client.post("/generate", json=body)
    assert client.post("/generate", json={"prompt": PROMPT, "seed": 2}).status_code == 200


@pytest.mark.parametrize("path", [
    "/files/..%2F..%2Fetc%2Fpasswd", "/files/../../etc/passwd", "/files/%2e%2e/%2e%2e/etc/passwd",
    "/files/" + "0" * 32 + ".mp4", "/files/" + "0" * 32 + ".npy", "/files/passwd", "/files/%2Fetc%2Fpasswd",
    "/gradio_api/file=/etc/passwd", "/file=/etc/passwd",
])
def test_file_route_serves_nothing_but_results(client, path):
    response = client.get(path)
    assert response.status_code in (400, 403, 404) and "root:" not in response.text


def test_full_queue_answers_busy_and_the_rest_are_served(client):
    answers = []

    def ask(seed: int) -> None:
        answers.append(client.post("/generate", json={"prompt": PROMPT, "seed": seed}))

    threads = [threading.Thread(target=ask, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) == {200, 503}, statuses  # one runs, one waits, the others are told to retry
    busy = next(a for a in answers if a.status_code == 503)
    assert busy.json() == {"error": BUSY} and busy.headers["retry-after"]


def test_page_is_served_at_the_root(client):
    page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()


def test_request_past_the_time_limit_times_out_and_leaves_no_files(tmp_path):
    service = Service(ServeConfig(timeout_s=0.05, output_dir=tmp_path))
    try:
        with pytest.raises(TimedOut, match="limit"):
            service.generate(GenerateRequest(prompt=PROMPT, seed=0))
        service.jobs.submit(lambda: None, deadline=math.inf).result(timeout=60)  # the late job has finished
        assert list(tmp_path.iterdir()) == []  # its result was discarded, and nothing is half-written
    finally:
        service.close()
    assert tmp_path.is_dir()  # a folder the user gave is kept


def test_results_are_deleted_after_the_keep_time(tmp_path):
    store = ResultStore(tmp_path / "out", keep_s=60, owns_root=True)
    try:
        result_id = store.new_id()
        for suffix in (".mp4", ".png"):
            store.path(result_id, suffix).write_bytes(b"data")
        store.add(result_id)
        (store.root / ".left-by-a-crash.partial.mp4").write_bytes(b"half")
        assert store.find(f"{result_id}.mp4").read_bytes() == b"data"
        assert store.sweep(time.time() + 61) == 2  # the result, and the stray file
        assert list(store.root.iterdir()) == []
        with pytest.raises(NotFound):
            store.find(f"{result_id}.mp4")
    finally:
        store.close()
    assert not (tmp_path / "out").exists()  # a folder the store made is removed


@pytest.mark.parametrize("body, fragment", [
    (b"{", "JSON object"), (b'"a prompt"', "JSON object"), (b'{"story": "one"}', "list of prompts"),
    (b'{"guidance": "high"}', "must be a number"), (b'{"model": 3}', "must be a string"),
])
def test_request_parsing_refuses_wrong_types(body, fragment):
    with pytest.raises(T2VError, match=fragment):
        parse_request(body)


def test_parsed_request_keeps_only_given_options():
    request = parse_request(json.dumps({"prompt": PROMPT, "steps": 12, "guidance": None}).encode())
    assert request.options == {"steps": 12} and request.prompts == [PROMPT]


def test_missing_web_packages_name_the_install_command(monkeypatch):
    import importlib.util

    from t2v.serve import require_web_extra

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(T2VError, match=r"pip install -e '\.\[web\]'"):
        require_web_extra()


def test_same_seed_same_video(client):
    """The server adds nothing random of its own (compared on the lossless contact sheets: x264 may
    encode the same frames a little differently from one save to the next)."""
    first, second = (client.post("/generate", json={"prompt": PROMPT, "seed": 7}).json() for _ in range(2))
    sheets = [np.asarray(Image.open(io.BytesIO(client.get(a["sheet_url"]).content))) for a in (first, second)]
    assert first["id"] != second["id"] and np.array_equal(*sheets)
