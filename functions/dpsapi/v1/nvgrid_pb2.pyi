import datetime

from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LoadValue(_message.Message):
    __slots__ = ("value", "unit")
    class Unit(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNIT_UNSPECIFIED: _ClassVar[LoadValue.Unit]
        UNIT_WATT: _ClassVar[LoadValue.Unit]
        UNIT_KILOWATT: _ClassVar[LoadValue.Unit]
        UNIT_MEGAWATT: _ClassVar[LoadValue.Unit]
    UNIT_UNSPECIFIED: LoadValue.Unit
    UNIT_WATT: LoadValue.Unit
    UNIT_KILOWATT: LoadValue.Unit
    UNIT_MEGAWATT: LoadValue.Unit
    VALUE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    value: float
    unit: LoadValue.Unit
    def __init__(self, value: _Optional[float] = ..., unit: _Optional[_Union[LoadValue.Unit, str]] = ...) -> None: ...

class Interval(_message.Message):
    __slots__ = ("start_time", "end_time")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LoadTargetStrategy(_message.Message):
    __slots__ = ("best_effort",)
    BEST_EFFORT_FIELD_NUMBER: _ClassVar[int]
    best_effort: bool
    def __init__(self, best_effort: _Optional[bool] = ...) -> None: ...

class LoadTarget(_message.Message):
    __slots__ = ("interval", "target_load", "strategy", "feed_tags", "correlation_id")
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    TARGET_LOAD_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    FEED_TAGS_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    interval: Interval
    target_load: LoadValue
    strategy: LoadTargetStrategy
    feed_tags: _containers.RepeatedScalarFieldContainer[str]
    correlation_id: str
    def __init__(self, interval: _Optional[_Union[Interval, _Mapping]] = ..., target_load: _Optional[_Union[LoadValue, _Mapping]] = ..., strategy: _Optional[_Union[LoadTargetStrategy, _Mapping]] = ..., feed_tags: _Optional[_Iterable[str]] = ..., correlation_id: _Optional[str] = ...) -> None: ...

class LoadTargetRequest(_message.Message):
    __slots__ = ("load_targets",)
    LOAD_TARGETS_FIELD_NUMBER: _ClassVar[int]
    load_targets: _containers.RepeatedCompositeFieldContainer[LoadTarget]
    def __init__(self, load_targets: _Optional[_Iterable[_Union[LoadTarget, _Mapping]]] = ...) -> None: ...

class LoadTargetResponse(_message.Message):
    __slots__ = ("code", "diag_msg", "details")
    class StatusCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_CODE_UNSPECIFIED: _ClassVar[LoadTargetResponse.StatusCode]
        STATUS_CODE_SUCCESS: _ClassVar[LoadTargetResponse.StatusCode]
        STATUS_CODE_ERROR: _ClassVar[LoadTargetResponse.StatusCode]
    STATUS_CODE_UNSPECIFIED: LoadTargetResponse.StatusCode
    STATUS_CODE_SUCCESS: LoadTargetResponse.StatusCode
    STATUS_CODE_ERROR: LoadTargetResponse.StatusCode
    class Detail(_message.Message):
        __slots__ = ("code", "diag_msg", "feed_tag", "correlation_id")
        CODE_FIELD_NUMBER: _ClassVar[int]
        DIAG_MSG_FIELD_NUMBER: _ClassVar[int]
        FEED_TAG_FIELD_NUMBER: _ClassVar[int]
        CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
        code: LoadTargetResponse.StatusCode
        diag_msg: str
        feed_tag: str
        correlation_id: str
        def __init__(self, code: _Optional[_Union[LoadTargetResponse.StatusCode, str]] = ..., diag_msg: _Optional[str] = ..., feed_tag: _Optional[str] = ..., correlation_id: _Optional[str] = ...) -> None: ...
    CODE_FIELD_NUMBER: _ClassVar[int]
    DIAG_MSG_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    code: LoadTargetResponse.StatusCode
    diag_msg: str
    details: _containers.RepeatedCompositeFieldContainer[LoadTargetResponse.Detail]
    def __init__(self, code: _Optional[_Union[LoadTargetResponse.StatusCode, str]] = ..., diag_msg: _Optional[str] = ..., details: _Optional[_Iterable[_Union[LoadTargetResponse.Detail, _Mapping]]] = ...) -> None: ...

class GetLoadScheduleRequest(_message.Message):
    __slots__ = ("interval", "feed_tags")
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    FEED_TAGS_FIELD_NUMBER: _ClassVar[int]
    interval: Interval
    feed_tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, interval: _Optional[_Union[Interval, _Mapping]] = ..., feed_tags: _Optional[_Iterable[str]] = ...) -> None: ...

class LoadSchedule(_message.Message):
    __slots__ = ("load_targets",)
    LOAD_TARGETS_FIELD_NUMBER: _ClassVar[int]
    load_targets: _containers.RepeatedCompositeFieldContainer[LoadTarget]
    def __init__(self, load_targets: _Optional[_Iterable[_Union[LoadTarget, _Mapping]]] = ...) -> None: ...

class GetCurrentLoadTargetResponse(_message.Message):
    __slots__ = ("load_targets",)
    class LoadTargetsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: LoadTarget
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[LoadTarget, _Mapping]] = ...) -> None: ...
    LOAD_TARGETS_FIELD_NUMBER: _ClassVar[int]
    load_targets: _containers.MessageMap[str, LoadTarget]
    def __init__(self, load_targets: _Optional[_Mapping[str, LoadTarget]] = ...) -> None: ...

class FeedMetadata(_message.Message):
    __slots__ = ("metadata",)
    class Entry(_message.Message):
        __slots__ = ("min_power_cap", "max_power_cap", "default_constraint")
        MIN_POWER_CAP_FIELD_NUMBER: _ClassVar[int]
        MAX_POWER_CAP_FIELD_NUMBER: _ClassVar[int]
        DEFAULT_CONSTRAINT_FIELD_NUMBER: _ClassVar[int]
        min_power_cap: LoadValue
        max_power_cap: LoadValue
        default_constraint: LoadValue
        def __init__(self, min_power_cap: _Optional[_Union[LoadValue, _Mapping]] = ..., max_power_cap: _Optional[_Union[LoadValue, _Mapping]] = ..., default_constraint: _Optional[_Union[LoadValue, _Mapping]] = ...) -> None: ...
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: FeedMetadata.Entry
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[FeedMetadata.Entry, _Mapping]] = ...) -> None: ...
    METADATA_FIELD_NUMBER: _ClassVar[int]
    metadata: _containers.MessageMap[str, FeedMetadata.Entry]
    def __init__(self, metadata: _Optional[_Mapping[str, FeedMetadata.Entry]] = ...) -> None: ...

class LoadTargetStatus(_message.Message):
    __slots__ = ("statuses",)
    class FeedStatus(_message.Message):
        __slots__ = ("current_target", "calculated_load")
        CURRENT_TARGET_FIELD_NUMBER: _ClassVar[int]
        CALCULATED_LOAD_FIELD_NUMBER: _ClassVar[int]
        current_target: LoadTarget
        calculated_load: LoadValue
        def __init__(self, current_target: _Optional[_Union[LoadTarget, _Mapping]] = ..., calculated_load: _Optional[_Union[LoadValue, _Mapping]] = ...) -> None: ...
    class StatusesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: LoadTargetStatus.FeedStatus
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[LoadTargetStatus.FeedStatus, _Mapping]] = ...) -> None: ...
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    statuses: _containers.MessageMap[str, LoadTargetStatus.FeedStatus]
    def __init__(self, statuses: _Optional[_Mapping[str, LoadTargetStatus.FeedStatus]] = ...) -> None: ...

class RegisterWebhookRequest(_message.Message):
    __slots__ = ("url", "for_events")
    class PowerEvent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        POWER_EVENT_UNSPECIFIED: _ClassVar[RegisterWebhookRequest.PowerEvent]
        POWER_EVENT_START_RAMP_UP: _ClassVar[RegisterWebhookRequest.PowerEvent]
        POWER_EVENT_END_RAMP_UP: _ClassVar[RegisterWebhookRequest.PowerEvent]
        POWER_EVENT_START_RAMP_DOWN: _ClassVar[RegisterWebhookRequest.PowerEvent]
        POWER_EVENT_END_RAMP_DOWN: _ClassVar[RegisterWebhookRequest.PowerEvent]
    POWER_EVENT_UNSPECIFIED: RegisterWebhookRequest.PowerEvent
    POWER_EVENT_START_RAMP_UP: RegisterWebhookRequest.PowerEvent
    POWER_EVENT_END_RAMP_UP: RegisterWebhookRequest.PowerEvent
    POWER_EVENT_START_RAMP_DOWN: RegisterWebhookRequest.PowerEvent
    POWER_EVENT_END_RAMP_DOWN: RegisterWebhookRequest.PowerEvent
    URL_FIELD_NUMBER: _ClassVar[int]
    FOR_EVENTS_FIELD_NUMBER: _ClassVar[int]
    url: str
    for_events: _containers.RepeatedScalarFieldContainer[RegisterWebhookRequest.PowerEvent]
    def __init__(self, url: _Optional[str] = ..., for_events: _Optional[_Iterable[_Union[RegisterWebhookRequest.PowerEvent, str]]] = ...) -> None: ...

class UnregisterWebhookRequest(_message.Message):
    __slots__ = ("url",)
    URL_FIELD_NUMBER: _ClassVar[int]
    url: str
    def __init__(self, url: _Optional[str] = ...) -> None: ...
