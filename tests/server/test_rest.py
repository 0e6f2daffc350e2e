"""The seed's REST routes: same auth, same limits, same errors as GraphQL."""

from __future__ import annotations

from tests.support.exports import memotrace_txt
from tests.support.live import Client
from tests.support.uploads import wait_for_job


async def test_upload_status_and_messages(user: Client) -> None:
    export = memotrace_txt(30)
    response = await user.http.post(
        "/api/v1/uploads",
        files={"file": ("chat.txt", export, "text/plain")},
        data={"self_name": "我"},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    upload_id = body["upload"]["id"]
    assert body["upload"]["size"] == len(export)
    final = await wait_for_job(user, body["job_id"])
    assert final["status"] == "SUCCEEDED"

    status = await user.http.get(f"/api/v1/uploads/{upload_id}/status", headers=user.headers)
    assert status.status_code == 200
    assert status.json()["status"] == "parsed"
    assert status.json()["message_count"] == 30

    seen = []
    after = None
    while True:
        params = {"upload_id": upload_id, "first": "12"} | ({"after": after} if after else {})
        page = await user.http.get("/api/v1/messages", params=params, headers=user.headers)
        assert page.status_code == 200
        data = page.json()
        assert data["total"] == 30
        seen += data["items"]
        if not data["has_next"]:
            break
        after = data["next_cursor"]
    assert [item["seq"] for item in seen] == list(range(30))
    assert seen[0]["timestamp"] == "2024-01-15T09:00:00+08:00"
    assert "拖欠工资" in page.content.decode()  # UTF-8, not \\u escapes


async def test_errors_are_json_with_codes(user: Client, other_user: Client) -> None:
    no_token = await user.http.get("/api/v1/uploads/abc/status")
    assert no_token.status_code == 401
    assert no_token.json()["error"]["code"] == "UNAUTHENTICATED"

    missing = await user.http.get("/api/v1/uploads/abc/status", headers=user.headers)
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "code": "NOT_FOUND",
        "message": "no such upload",
        "field": "upload_id",
    }

    no_file = await user.http.post(
        "/api/v1/uploads",
        data={"self_name": "x"},
        files={"other": ("a", b"a")},
        headers=user.headers,
    )
    assert no_file.status_code == 422
    assert no_file.json()["error"]["field"] == "file"

    empty = await user.http.post(
        "/api/v1/uploads", files={"file": ("a.txt", b"")}, headers=user.headers
    )
    assert empty.status_code == 422

    bad_page = await user.http.get(
        "/api/v1/messages", params={"upload_id": "x", "first": "9999"}, headers=user.headers
    )
    assert bad_page.status_code == 422

    response = await user.http.post(
        "/api/v1/uploads", files={"file": ("chat.txt", memotrace_txt(3))}, headers=user.headers
    )
    upload_id = response.json()["upload"]["id"]
    theirs = await other_user.http.get(
        f"/api/v1/uploads/{upload_id}/status", headers=other_user.headers
    )
    assert theirs.status_code == 404
    listing = await other_user.http.get(
        "/api/v1/messages", params={"upload_id": upload_id}, headers=other_user.headers
    )
    assert listing.status_code == 404
    assert (
        await user.http.get("/api/v1/uploads/x/status", headers={"Authorization": "Basic x"})
    ).status_code == 401
