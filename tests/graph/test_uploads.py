"""Upload → parse → page through messages, over real HTTP and WebSocket, in both modes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json

import httpx
import pytest

from graph.schema import create_schema
from server.app import create_app
from server.resources import Resources
from server.settings import Settings
from tests.conftest import make_settings
from tests.support.exports import memotrace_txt
from tests.support.live import Client, GraphQLError, LiveServer
from tests.support.uploads import upload_and_parse, upload_chat, wait_for_job

MESSAGES = """
query($upload: ID!, $first: Int, $after: String, $sender: String, $search: String,
      $kind: MessageKind) {
  messages(uploadId: $upload, first: $first, after: $after, sender: $sender, search: $search,
           kind: $kind) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id seq sender text kind isSelf timestamp labels { key value } } }
  }
}"""


async def all_messages(
    user: Client, upload_id: str, page: int = 100, **filters: object
) -> list[dict]:
    messages: list[dict] = []
    after = None
    while True:
        data = await user.query(
            MESSAGES, {"upload": upload_id, "first": page, "after": after, **filters}
        )
        connection = data["messages"]
        messages += [edge["node"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            return messages
        after = connection["pageInfo"]["endCursor"]


async def test_register_login_upload_parse_and_page(anon: Client, resources: Resources) -> None:
    user = await anon.register()
    login = await anon.query(
        """mutation($email: String!) {
             login(email: $email, password: "correct horse battery") {
               __typename ... on AuthSuccess { token user { id } }
             }
           }""",
        {"email": user.email},  # type: ignore[attr-defined]
    )
    assert login["login"]["__typename"] == "AuthSuccess"
    user.token = login["login"]["token"]
    me = await user.query("{ me { id email name } }")
    assert me["me"]["id"] == user.user_id

    export = memotrace_txt(250)
    result = await upload_chat(user, export, "张三.txt", variables={"selfName": "我"})
    assert result["__typename"] == "UploadChatSuccess", result
    assert result["upload"]["size"] == len(export)
    assert result["upload"]["sha256"] == hashlib.sha256(export).hexdigest()
    assert result["job"]["kind"] == "parse_upload"
    final = await wait_for_job(user, result["job"]["id"])
    assert final["status"] == "SUCCEEDED", final
    assert final["progress"] == 1.0

    upload_id = result["upload"]["id"]
    upload = await user.query(
        """query($id: ID!) {
             upload(id: $id) { status messageCount format selfName job { status } }
           }""",
        {"id": upload_id},
    )
    assert upload["upload"] == {
        "status": "PARSED",
        "messageCount": 250,
        "format": upload["upload"]["format"],
        "selfName": "我",
        "job": {"status": "SUCCEEDED"},
    }
    assert upload["upload"]["format"]

    messages = await all_messages(user, upload_id, page=60)
    assert len(messages) == 250
    assert [m["seq"] for m in messages] == list(range(250))
    assert messages[1]["text"] == "老板又拖欠工资了，三个月没发[流泪] #1"
    assert messages[0]["timestamp"] == "2024-01-15T09:00:00+08:00"
    assert {m["isSelf"] for m in messages if m["sender"] == "我"} == {True}
    assert {m["isSelf"] for m in messages if m["sender"] == "张三"} == {False}
    first_page = await user.query(MESSAGES, {"upload": upload_id, "first": 10})
    assert first_page["messages"]["totalCount"] == 250


async def test_filters(user: Client) -> None:
    upload_id = await upload_and_parse(user, memotrace_txt(40))
    by_sender = await all_messages(user, upload_id, sender="张三")
    assert len(by_sender) == 20
    assert {m["sender"] for m in by_sender} == {"张三"}
    wages = await all_messages(user, upload_id, search="工资")
    assert wages
    assert all("工资" in m["text"] for m in wages)
    images = await all_messages(user, upload_id, kind="IMAGE")
    assert len(images) == 5
    data = await user.query(
        """query($upload: ID!) {
             messages(uploadId: $upload, since: "2024-01-15T09:10:00+08:00",
                      until: "2024-01-15T09:20:00+08:00") { totalCount }
           }""",
        {"upload": upload_id},
    )
    assert data["messages"]["totalCount"] == 10


async def test_senders_and_set_self(user: Client) -> None:
    upload_id = await upload_and_parse(user, memotrace_txt(30, senders=("张三", "李四", "王五")))
    senders = await user.query(
        "query($id: ID!) { senders(uploadId: $id) { name messageCount isSelf } }", {"id": upload_id}
    )
    assert {s["name"]: s["messageCount"] for s in senders["senders"]} == {
        "张三": 10,
        "李四": 10,
        "王五": 10,
    }
    assert {s["isSelf"] for s in senders["senders"]} == {None}
    result = await user.query(
        """mutation($id: ID!) {
             setSelf(uploadId: $id, sender: "李四") {
               __typename ... on SetSelfSuccess { upload { selfName } }
             }
           }""",
        {"id": upload_id},
    )
    assert result["setSelf"]["upload"]["selfName"] == "李四"
    messages = await all_messages(user, upload_id)
    assert all(m["isSelf"] == (m["sender"] == "李四") for m in messages)
    wrong = await user.query(
        """mutation($id: ID!) {
             setSelf(uploadId: $id, sender: "nobody") { __typename ... on UserError { field code } }
           }""",
        {"id": upload_id},
    )
    assert wrong["setSelf"] == {
        "__typename": "InvalidInputError",
        "field": "sender",
        "code": "INVALID_INPUT",
    }


async def test_reparse_replaces_messages(user: Client) -> None:
    upload_id = await upload_and_parse(user, memotrace_txt(20))
    result = await user.query(
        """mutation($id: ID!) {
             reparseUpload(id: $id) { __typename ... on ReparseUploadSuccess { job { id } } }
           }""",
        {"id": upload_id},
    )
    final = await wait_for_job(user, result["reparseUpload"]["job"]["id"])
    assert final["status"] == "SUCCEEDED"
    messages = await all_messages(user, upload_id)
    assert len(messages) == 20


async def test_reparses_at_once_start_one_parse(user: Client) -> None:
    # Big enough that the first parse is still running when the last request is answered.
    upload_id = await upload_and_parse(user, memotrace_txt(20_000))
    results = await asyncio.gather(
        *(
            user.query(
                """mutation($id: ID!) { reparseUpload(id: $id) {
                     __typename ... on ReparseUploadSuccess { job { id } }
                     ... on ConflictError { code } } }""",
                {"id": upload_id},
            )
            for _ in range(4)
        )
    )
    payloads = [result["reparseUpload"] for result in results]
    started = [p for p in payloads if p["__typename"] == "ReparseUploadSuccess"]
    assert len(started) == 1
    assert all(
        p == {"__typename": "ConflictError", "code": "CONFLICT"}
        for p in payloads
        if p not in started
    )
    final = await wait_for_job(user, started[0]["job"]["id"])
    assert final["status"] == "SUCCEEDED"
    data = await user.query(MESSAGES, {"upload": upload_id, "first": 1})
    assert data["messages"]["totalCount"] == 20_000


async def test_delete_upload_removes_everything(user: Client, resources: Resources) -> None:
    upload_id = await upload_and_parse(user, memotrace_txt(10))
    key = f"users/{user.user_id}/uploads/{upload_id}/original"
    assert await resources.storage.size(key) is not None
    result = await user.query(
        "mutation($id: ID!) { deleteUpload(id: $id) { __typename } }", {"id": upload_id}
    )
    assert result["deleteUpload"]["__typename"] == "DeleteUploadSuccess"
    assert await resources.storage.size(key) is None
    assert (await user.query("query($id: ID!) { upload(id: $id) { id } }", {"id": upload_id}))[
        "upload"
    ] is None
    data = await user.query(MESSAGES, {"upload": upload_id, "first": 10})
    assert data["messages"]["totalCount"] == 0
    again = await user.query(
        "mutation($id: ID!) { deleteUpload(id: $id) { __typename } }", {"id": upload_id}
    )
    assert again["deleteUpload"]["__typename"] == "NotFoundError"


async def test_unparseable_upload_fails_with_a_clear_error(user: Client) -> None:
    result = await upload_chat(user, b"\x00\x01\x02 binary junk \xff" * 100, "chat.txt")
    final = await wait_for_job(user, result["job"]["id"])
    assert final["status"] == "FAILED"
    assert final["error"]
    upload = await user.query(
        "query($id: ID!) { upload(id: $id) { status error messageCount } }",
        {"id": result["upload"]["id"]},
    )
    assert upload["upload"]["status"] == "FAILED"
    assert upload["upload"]["error"] == final["error"]
    assert upload["upload"]["messageCount"] == 0


async def test_refusals_leave_no_row_or_object(user: Client, resources: Resources) -> None:
    before = await user.query("{ uploads(first: 50) { totalCount } }")
    empty = await upload_chat(user, b"", "empty.txt")
    assert empty == {
        "__typename": "InvalidInputError",
        "message": "the file is empty",
        "field": "file",
        "code": "INVALID_INPUT",
    }
    bad_zone = await upload_chat(user, b"x", variables={"timezone": "Mars/Base"})
    assert bad_zone["code"] == "INVALID_INPUT"
    assert bad_zone["field"] == "timezone"
    # Over the limit by a little: refused by the storage write, as a payload error.
    limit = resources.settings.max_upload_bytes
    too_big = await upload_chat(user, b"a" * (limit + 1))
    assert too_big["__typename"] == "TooLargeError"
    assert too_big["code"] == "TOO_LARGE"
    after = await user.query("{ uploads(first: 50) { totalCount } }")
    assert after == before
    objects = await resources.storage.delete_prefix(f"users/{user.user_id}/uploads/")
    assert objects == 0


PREAMBLE = (
    b'--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
    b'{"query": "mutation($f: Upload!) { uploadChat(file: $f) { __typename } }",'
    b' "variables": {"f": null}}\r\n'
    b'--x\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0": ["variables.f"]}\r\n'
    b'--x\r\nContent-Disposition: form-data; name="0"; filename="big.txt"\r\n\r\n'
)


async def _open(user: Client, framing: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = user.server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        (
            f"POST /graphql HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {user.token}\r\n"
            f"Content-Type: multipart/form-data; boundary=x\r\n{framing}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    return reader, writer


async def test_declared_2gb_upload_is_refused_before_its_body(user: Client) -> None:
    reader, writer = await _open(user, f"Content-Length: {2 << 30}")
    writer.write(PREAMBLE)
    response = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert b'"TOO_LARGE"' in response


async def test_huge_upload_is_refused_while_streaming(user: Client, resources: Resources) -> None:
    """A body far over the limit, sent chunked without a length, is cut off while it streams
    in: the server stops reading (413, then closes) long before the client could finish."""
    limit = resources.settings.max_upload_bytes
    total = 64 * limit
    before = await user.query("{ uploads(first: 5) { totalCount } }")
    reader, writer = await _open(user, "Transfer-Encoding: chunked")
    received = asyncio.create_task(reader.read(65536))
    sent = 0
    chunk = PREAMBLE + b"a" * (1 << 20)
    with contextlib.suppress(ConnectionError):
        while sent < total and not received.done():
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            sent += len(chunk)
            chunk = b"a" * (1 << 20)
    response = b""
    with contextlib.suppress(ConnectionError, TimeoutError):
        response = await asyncio.wait_for(received, 10)
    writer.close()
    assert sent < total // 4, "the server read far more than the limit before refusing"
    # The 413 usually arrives; a reset can overtake it on loopback, but the cut-off is the point.
    assert not response or response.startswith(b"HTTP/1.1 413"), response[:200]
    assert await user.query("{ uploads(first: 5) { totalCount } }") == before


async def test_missing_file_field(user: Client) -> None:
    response = await user.http.post(
        "/graphql",
        data={
            "operations": json.dumps(
                {
                    "query": "mutation($f: Upload!) { uploadChat(file: $f) { __typename } }",
                    "variables": {"f": None},
                }
            ),
            "map": "{}",
        },
        files={"unrelated": ("x.txt", b"x")},
        headers=user.headers,
    )
    body = response.json()
    assert body.get("errors") or body["data"]["uploadChat"]["__typename"] == "InvalidInputError"
    after = await user.query("{ uploads(first: 5) { totalCount } }")
    assert after["uploads"]["totalCount"] == 0


async def test_uploads_connection(user: Client) -> None:
    ids = [
        (await upload_chat(user, memotrace_txt(2), f"{n}.txt"))["upload"]["id"] for n in range(3)
    ]
    page = await user.query(
        """{ uploads(first: 2) {
               totalCount pageInfo { hasNextPage endCursor } edges { node { id filename } }
           } }"""
    )
    assert page["uploads"]["totalCount"] == 3
    assert [e["node"]["id"] for e in page["uploads"]["edges"]] == ids[::-1][:2]
    rest = await user.query(
        """query($after: String) {
             uploads(first: 2, after: $after) { pageInfo { hasNextPage } edges { node { id } } }
           }""",
        {"after": page["uploads"]["pageInfo"]["endCursor"]},
    )
    assert [e["node"]["id"] for e in rest["uploads"]["edges"]] == [ids[0]]
    assert rest["uploads"]["pageInfo"]["hasNextPage"] is False


async def test_page_size_and_cursor_are_checked(user: Client) -> None:
    with pytest.raises(GraphQLError, match="between 1 and"):
        await user.query("{ uploads(first: 100000) { totalCount } }")
    upload_id = await upload_and_parse(user, memotrace_txt(3))
    with pytest.raises(GraphQLError, match="invalid cursor"):
        await user.query(MESSAGES, {"upload": upload_id, "after": "garbage!"})
    # Forged cursors: a seq beyond the column, an upload time without offset or out of range.
    forged = [b"m:" + b"9" * 30, b"m:-1"]
    for cursor in forged:
        with pytest.raises(GraphQLError, match="invalid cursor"):
            await user.query(MESSAGES, {"upload": upload_id, "after": _b64(cursor)})
    for cursor in (b"u:2024-01-01T00:00:00|zzz", b"u:0001-01-01T00:00:00+08:00|zzz"):
        with pytest.raises(GraphQLError, match="invalid cursor"):
            await user.query(
                "query($after: String) { uploads(after: $after) { totalCount } }",
                {"after": _b64(cursor)},
            )
    for bound in ("0001-01-01T00:00:00+08:00", "2024-01-01T00:00:00"):
        with pytest.raises(GraphQLError) as raised:
            await user.query(
                "query($u: ID!, $since: DateTime) { messages(uploadId: $u, since: $since) {"
                " totalCount } }",
                {"u": upload_id, "since": bound},
            )
        assert raised.value.errors[0]["extensions"]["code"] == "INVALID_INPUT"
    response = await user.http.get(
        "/api/v1/messages",
        params={"upload_id": upload_id, "since": "0001-01-01T00:00:00+08:00"},
        headers=user.headers,
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "since"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def test_too_deep_query_is_refused(user: Client) -> None:
    nested = "{ me { id } " + "".join(f"a{n}: me {{ id }} " for n in range(40)) + "}"
    with pytest.raises(GraphQLError, match="aliases"):
        await user.query(nested)
    # Our types have no cycles, so real queries stay shallow: check the limiter with a low one.
    shallow = create_schema(Settings(graphql_max_depth=3))
    result = await shallow.execute("{ uploads { edges { node { job { id } } } } }")
    assert result.errors
    assert result.errors[0].message == "'anonymous' exceeds maximum operation depth of 3"


async def test_upload_rate_limit(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    settings = make_settings(
        "embedded", tmp_path_factory.mktemp("uploadrate"), request, upload_rate_per_minute=2
    )
    live = LiveServer(create_app(settings))
    await live.start()
    try:
        async with httpx.AsyncClient(base_url=live.url) as http:
            user = await Client(live, http).register()
            kinds = [(await upload_chat(user, memotrace_txt(2)))["__typename"] for _ in range(3)]
        assert kinds == ["UploadChatSuccess", "UploadChatSuccess", "RateLimitedError"]
    finally:
        await live.stop()
