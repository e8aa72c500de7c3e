"""Kafka header names. Values are UTF-8 strings.

Trace context travels in the W3C `traceparent` / `tracestate` headers, written by the outbox
relay from what the producing request had and read by every consumer.
"""

EVENT_ID = "verity-event-id"
EVENT_TYPE = "verity-event-type"
SCHEMA_VERSION = "verity-schema-version"
CONTENT_TYPE = "content-type"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

# Added when a message is moved to a dead-letter topic.
DLQ_REASON = "verity-dlq-reason"
DLQ_ERROR = "verity-dlq-error"
DLQ_SOURCE_TOPIC = "verity-dlq-source-topic"
DLQ_SOURCE_PARTITION = "verity-dlq-source-partition"
DLQ_SOURCE_OFFSET = "verity-dlq-source-offset"
DLQ_GROUP = "verity-dlq-group"
DLQ_ATTEMPTS = "verity-dlq-attempts"

JSON = "application/json"
