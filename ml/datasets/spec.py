"""What a dataset is made of: the spec a user chooses, validated, with a stable JSON form.

The JSON form (`DatasetSpec.to_json`) lists every field, defaults included, with sorted keys, so
the spec stored on a dataset row reproduces the same bytes from the same messages even if a
later version of weft changes a default. `from_json` accepts a partial object (missing fields take
today's defaults) and rejects unknown keys, so a typo never passes silently.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal, TypeVar, get_args

import orjson

DatasetFormat = Literal["prompt_completion", "sharegpt", "alpaca"]
LabelOp = Literal["eq", "ne", "in", "not_in"]
LabelScope = Literal["example", "message"]
NonTextPolicy = Literal["drop", "placeholder"]

FORMATS: Final[tuple[str, ...]] = get_args(DatasetFormat)
LABEL_OPS: Final[tuple[str, ...]] = get_args(LabelOp)
LABEL_SCOPES: Final[tuple[str, ...]] = get_args(LabelScope)
NON_TEXT_POLICIES: Final[tuple[str, ...]] = get_args(NonTextPolicy)

SPEC_VERSION: Final = 1
MAX_CONTEXT_TURNS: Final = 64
MAX_SESSION_GAP_SECONDS: Final = 30 * 24 * 3600

T = TypeVar("T")


class SpecError(ValueError):
    """A dataset spec that cannot be used; `field` is the dotted path of the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def within(self, prefix: str) -> SpecError:
        """The same error, with its field path under `prefix`."""
        return SpecError(f"{prefix}.{self.field}", self.message)


def _fail(field: str, message: str) -> SpecError:
    return SpecError(field, message)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _names(value: object, field: str, *, min_chars: int = 1) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise _fail(field, "must be a list of strings")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _fail(f"{field}[{i}]", "must be a string")
        if len(item.strip()) < min_chars:
            need = (
                "must not be blank" if min_chars == 1 else f"needs at least {min_chars} characters"
            )
            raise _fail(f"{field}[{i}]", need)
    return tuple(value)


def _aware(value: object, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise _fail(field, "must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise _fail(field, "must be timezone-aware (give an offset such as +08:00)")
    return value


@dataclass(frozen=True, slots=True)
class LabelCondition:
    """A condition on labels: `topic eq 工资纠纷`, `sentiment ne negative`, `topic in [a, b]`.

    - eq / in: the labels hold the value (one of the values);
    - ne / not_in: the labels hold none of them (a message without the key passes).

    scope "example" (default) tests the union of the labels of every message in an example
    (context, prompt and reply); scope "message" drops single messages that fail, before
    sessions are cut.
    """

    key: str
    op: LabelOp
    values: tuple[str, ...]
    scope: LabelScope = "example"

    def __post_init__(self) -> None:
        given: object = self.values
        if isinstance(given, str):
            object.__setattr__(self, "values", (given,))
        elif isinstance(given, list):
            object.__setattr__(self, "values", tuple(given))
        if not isinstance(self.key, str) or not self.key.strip():
            raise _fail("key", "must be a non-blank string")
        if self.op not in LABEL_OPS:
            raise _fail("op", f"must be one of {', '.join(LABEL_OPS)}, not {self.op!r}")
        if self.scope not in LABEL_SCOPES:
            raise _fail("scope", f"must be one of {', '.join(LABEL_SCOPES)}, not {self.scope!r}")
        values = _names(self.values, "values")
        if self.op in ("eq", "ne") and len(values) != 1:
            raise _fail("values", f"{self.op} takes exactly one value, got {len(values)}")
        if not values:
            raise _fail("values", f"{self.op} needs at least one value")

    def matches(self, labels: Mapping[str, Collection[str]]) -> bool:
        """Whether labels (key -> values) satisfy this condition."""
        have = labels.get(self.key)
        hit = have is not None and any(v in have for v in self.values)
        return hit if self.op in ("eq", "in") else not hit

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "op": self.op, "values": list(self.values), "scope": self.scope}


@dataclass(frozen=True, slots=True)
class Filters:
    """Which messages and examples a dataset keeps.

    - labels: conditions that must all hold (see `LabelCondition` for their scope);
    - senders: keep only messages from these senders (the persona's own messages are always
      kept); exclude_senders: drop these senders' messages;
    - since / until: keep messages with since <= timestamp < until;
    - non_text: "drop" non-text messages, or keep them as placeholders such as [图片];
      system and recall messages are always dropped;
    - min_length / max_length: bounds, in characters, on the reply an example teaches (as
      written: merged, scrubbed).
    """

    labels: tuple[LabelCondition, ...] = ()
    senders: tuple[str, ...] = ()
    exclude_senders: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    non_text: NonTextPolicy = "drop"
    min_length: int = 1
    max_length: int | None = None

    def __post_init__(self) -> None:
        labels: object = self.labels
        if isinstance(labels, list):
            labels = tuple(labels)
            object.__setattr__(self, "labels", labels)
        if not isinstance(labels, tuple):
            raise _fail("labels", "must be a list of label conditions")
        for i, condition in enumerate(labels):
            if not isinstance(condition, LabelCondition):
                raise _fail(f"labels[{i}]", "must be a LabelCondition")
        object.__setattr__(self, "senders", _names(self.senders, "senders"))
        object.__setattr__(self, "exclude_senders", _names(self.exclude_senders, "exclude_senders"))
        since = _aware(self.since, "since")
        until = _aware(self.until, "until")
        if since is not None and until is not None and since >= until:
            raise _fail("until", "must be later than since")
        if self.non_text not in NON_TEXT_POLICIES:
            raise _fail("non_text", f"must be one of {', '.join(NON_TEXT_POLICIES)}")
        if not _is_int(self.min_length) or self.min_length < 0:
            raise _fail("min_length", "must be an integer >= 0")
        if self.max_length is not None and (
            not _is_int(self.max_length) or self.max_length < max(self.min_length, 1)
        ):
            raise _fail("max_length", "must be an integer >= min_length and >= 1, or null")

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": [c.to_dict() for c in self.labels],
            "senders": list(self.senders),
            "exclude_senders": list(self.exclude_senders),
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "non_text": self.non_text,
            "min_length": self.min_length,
            "max_length": self.max_length,
        }


@dataclass(frozen=True, slots=True)
class PiiOptions:
    """PII scrubbing (on by default); `names` are extra names to replace with <姓名>."""

    enabled: bool = True
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise _fail("enabled", "must be true or false")
        # A one-character name would scrub that character everywhere.
        object.__setattr__(self, "names", _names(self.names, "names", min_chars=2))

    def to_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "names": list(self.names)}


@dataclass(frozen=True, slots=True)
class DedupeOptions:
    """Duplicate removal on the normalized (prompt, reply) pair of each example.

    exact: drop an example whose normalized pair was seen before (normalized: lower case,
    letters and digits only, repeats such as 哈哈哈哈 folded). near: drop one whose character
    3-grams mostly match a kept example's (MinHash LSH, about Jaccard 0.7; see
    `ml.datasets.dedupe`); only pairs of at least `min_chars` normalized characters take part,
    since a small edit to a short message ("好的" / "好吧") makes a different message.
    """

    exact: bool = True
    near: bool = True
    min_chars: int = 24

    def __post_init__(self) -> None:
        for name in ("exact", "near"):
            if not isinstance(getattr(self, name), bool):
                raise _fail(name, "must be true or false")
        if not _is_int(self.min_chars) or self.min_chars < 3:
            raise _fail("min_chars", "must be an integer >= 3")

    def to_dict(self) -> dict[str, Any]:
        return {"exact": self.exact, "near": self.near, "min_chars": self.min_chars}


@dataclass(frozen=True, slots=True)
class SplitOptions:
    """The eval split: each example goes to eval when a keyed hash of it falls below the ratio."""

    eval_ratio: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        ratio = self.eval_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio < 1:
            raise _fail(
                "eval_ratio", "must be a number from 0 (no eval set) up to, not including, 1"
            )
        object.__setattr__(self, "eval_ratio", float(ratio))
        if not _is_int(self.seed) or not 0 <= self.seed < 2**63:
            raise _fail("seed", "must be an integer from 0 to 2**63 - 1")

    def to_dict(self) -> dict[str, Any]:
        return {"eval_ratio": self.eval_ratio, "seed": self.seed}


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """Everything that decides a dataset's bytes, given its messages.

    - format: "prompt_completion" (the seed's {"prompt": "用户: ...", "completion": "回复: ..."}),
      "sharegpt" (OpenAI chat messages: {"messages": [{"role", "content"}, ...]}) or "alpaca"
      (instruction / input / output / system / history);
    - persona: the sender names whose replies the model learns; empty means the messages
      flagged is_self;
    - session_gap_seconds: a longer silence (or a new upload) starts a new conversation;
    - merge_consecutive: a burst of one side's messages is one turn, and the whole burst of the
      persona is one reply; when off, each persona message is its own reply to the latest
      message of the other side;
    - max_context_turns: earlier turns put before the prompt (0: single-turn examples);
    - system_prompt: for sharegpt and alpaca (prompt_completion has no place for one).
    """

    format: DatasetFormat = "prompt_completion"
    persona: tuple[str, ...] = ()
    system_prompt: str = ""
    session_gap_seconds: int = 1800
    merge_consecutive: bool = True
    max_context_turns: int = 4
    filters: Filters = field(default_factory=Filters)
    pii: PiiOptions = field(default_factory=PiiOptions)
    dedupe: DedupeOptions = field(default_factory=DedupeOptions)
    split: SplitOptions = field(default_factory=SplitOptions)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise _fail("format", f"must be one of {', '.join(FORMATS)}, not {self.format!r}")
        object.__setattr__(self, "persona", _names(self.persona, "persona"))
        if not isinstance(self.system_prompt, str):
            raise _fail("system_prompt", "must be a string")
        if self.system_prompt and self.format == "prompt_completion":
            raise _fail(
                "system_prompt", "prompt_completion has no system prompt; use sharegpt or alpaca"
            )
        gap = self.session_gap_seconds
        if not _is_int(gap) or not 1 <= gap <= MAX_SESSION_GAP_SECONDS:
            raise _fail(
                "session_gap_seconds", f"must be an integer from 1 to {MAX_SESSION_GAP_SECONDS}"
            )
        if not isinstance(self.merge_consecutive, bool):
            raise _fail("merge_consecutive", "must be true or false")
        turns = self.max_context_turns
        if not _is_int(turns) or not 0 <= turns <= MAX_CONTEXT_TURNS:
            raise _fail("max_context_turns", f"must be an integer from 0 to {MAX_CONTEXT_TURNS}")
        for name, kind in (
            ("filters", Filters),
            ("pii", PiiOptions),
            ("dedupe", DedupeOptions),
            ("split", SplitOptions),
        ):
            if not isinstance(getattr(self, name), kind):
                raise _fail(name, f"must be a {kind.__name__}")
        clash = sorted(set(self.persona) & set(self.filters.exclude_senders))
        if clash:
            raise _fail("filters.exclude_senders", f"excludes the persona: {', '.join(clash)}")

    @property
    def session_gap(self) -> timedelta:
        return timedelta(seconds=self.session_gap_seconds)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form: every field, defaults included."""
        return {
            "version": SPEC_VERSION,
            "format": self.format,
            "persona": list(self.persona),
            "system_prompt": self.system_prompt,
            "session_gap_seconds": self.session_gap_seconds,
            "merge_consecutive": self.merge_consecutive,
            "max_context_turns": self.max_context_turns,
            "filters": self.filters.to_dict(),
            "pii": self.pii.to_dict(),
            "dedupe": self.dedupe.to_dict(),
            "split": self.split.to_dict(),
        }

    def to_json(self) -> str:
        """Canonical JSON: compact, sorted keys; equal specs give equal strings."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS).decode()

    @classmethod
    def from_json(cls, data: str | bytes) -> DatasetSpec:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise SpecError("spec", f"not valid JSON: {exc}") from None
        return cls.from_dict(obj)

    @classmethod
    def from_dict(cls, obj: object) -> DatasetSpec:
        """Build a spec from its JSON-ready form; missing fields take their defaults."""
        data = _object(obj, "spec", _SPEC_KEYS)
        version = data.pop("version", SPEC_VERSION)
        if version != SPEC_VERSION:
            raise SpecError(
                "version", f"this weft reads spec version {SPEC_VERSION}, not {version!r}"
            )
        # Each builder is given its full dotted path and names the fields it rejects in full.
        nested = {
            name: build(data.pop(name), name) for name, build in _NESTED.items() if name in data
        }
        return cls(**data, **nested)


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _object(obj: object, field: str, allowed: Collection[str]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise SpecError(field, f"must be a JSON object, not {_json_kind(obj)}")
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise SpecError(unknown[0] if field == "spec" else f"{field}.{unknown[0]}", "unknown field")
    return dict(obj)


def _list(value: object, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise SpecError(field, "must be a list")
    return value


def _parse_datetime(value: object, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SpecError(field, "must be an ISO 8601 string with an offset")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise SpecError(field, f"not an ISO 8601 datetime: {value!r}") from None


def _label_condition(obj: object, field: str) -> LabelCondition:
    data = _object(obj, field, ("key", "op", "values", "scope"))
    for required in ("key", "op", "values"):
        if required not in data:
            raise SpecError(f"{field}.{required}", "is required")
    data["values"] = _list(data["values"], f"{field}.values")
    return _construct(LabelCondition, data, field)


def _filters(obj: object, field: str) -> Filters:
    data = _object(obj, field, _FILTER_KEYS)
    if "labels" in data:
        items = _list(data["labels"], f"{field}.labels")
        data["labels"] = tuple(
            _label_condition(c, f"{field}.labels[{i}]") for i, c in enumerate(items)
        )
    for name in ("since", "until"):
        if name in data:
            data[name] = _parse_datetime(data[name], f"{field}.{name}")
    return _construct(Filters, data, field)


def _simple(kind: Callable[..., T], keys: Collection[str]) -> Callable[[object, str], T]:
    def build(obj: object, field: str) -> T:
        data = _object(obj, field, keys)
        for name, value in data.items():
            if isinstance(value, list):
                data[name] = tuple(value)
        return _construct(kind, data, field)

    return build


def _construct(kind: Callable[..., T], data: dict[str, Any], field: str) -> T:
    """`kind(**data)`, with the paths of its validation errors placed under `field`."""
    try:
        return kind(**data)
    except SpecError as exc:
        raise exc.within(field) from None


_SPEC_KEYS: Final = (
    "version",
    "format",
    "persona",
    "system_prompt",
    "session_gap_seconds",
    "merge_consecutive",
    "max_context_turns",
    "filters",
    "pii",
    "dedupe",
    "split",
)
_FILTER_KEYS: Final = (
    "labels",
    "senders",
    "exclude_senders",
    "since",
    "until",
    "non_text",
    "min_length",
    "max_length",
)
_NESTED: Final[dict[str, Callable[[object, str], Any]]] = {
    "filters": _filters,
    "pii": _simple(PiiOptions, ("enabled", "names")),
    "dedupe": _simple(DedupeOptions, ("exact", "near", "min_chars")),
    "split": _simple(SplitOptions, ("eval_ratio", "seed")),
}
