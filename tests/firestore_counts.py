"""What a read costs on Firestore: RPCs and the documents they return, counted on the wire.

``tests.harness.counted_firestore_store`` counts RPCs; a listing's cost is also the
documents it reads (Firestore bills each one, and each is a snapshot to decode). Test and
bench instrumentation only: the channel the real client builds for the emulator
(FIRESTORE_EMULATOR_HOST must be set) is wrapped with a counting interceptor.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["FirestoreCounter", "counted_documents_store"]


class FirestoreCounter:
    """RPCs by method, and documents returned by every RunQuery stream and every Commit's
    writes (``documents``, ``writes``)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.documents = 0
        self.writes = 0

    def clear(self) -> None:
        self.calls.clear()
        self.documents = 0
        self.writes = 0

    def total(self) -> int:
        return sum(self.calls.values())


def counted_documents_store(
    project: str, database: str = "gridhook"
) -> tuple[Any, FirestoreCounter]:
    """A FirestoreEventStore on the emulator and the counter of what it sends and reads."""
    import grpc
    from google.cloud import firestore

    from gridhook.store.firestore import FirestoreEventStore

    counter = FirestoreCounter()

    class _Documents:
        """A RunQuery response stream that counts the documents going by."""

        def __init__(self, stream: Any) -> None:
            self._stream = stream

        def __iter__(self) -> _Documents:
            return self

        def __next__(self) -> Any:
            response = next(self._stream)
            if response.document.name:  # a response may carry no document (progress)
                counter.documents += 1
            return response

        def __getattr__(self, name: str) -> Any:  # cancel(), is_active(), … of the call
            return getattr(self._stream, name)

    class Counting(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
        def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            method = details.method.rsplit("/", 1)[-1]
            counter.calls[method] += 1
            if method == "Commit":
                counter.writes += len(request.writes)
            return continuation(details, request)

        def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
            method = details.method.rsplit("/", 1)[-1]
            counter.calls[method] += 1
            stream = continuation(details, request)
            return _Documents(stream) if method == "RunQuery" else stream

    client = firestore.Client(project=project, database=database)
    make_channel = client._emulator_channel  # test-only: wrap the emulator channel
    client._emulator_channel = lambda transport: grpc.intercept_channel(
        make_channel(transport), Counting()
    )
    return FirestoreEventStore(project, database, client=client), counter
