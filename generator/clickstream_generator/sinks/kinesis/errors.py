"""Sorting Kinesis and botocore failures into retryable and permanent.

The rule: a failure that a later identical request can get past (throttling,
an internal error, a 5xx, a dropped or timed-out connection) is retryable;
one that will fail the same way again (no such stream, access denied, bad
credentials that a refresh did not fix, an invalid request) is permanent and
stops the generator.
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from clickstream_generator.sinks.base import PermanentSinkError, RetryableSinkError, SinkError

RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "LimitExceededException",
        "RequestLimitExceeded",
        "InternalFailure",
        "InternalFailureException",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "KMSThrottlingException",
        "RequestTimeout",
        "RequestTimeoutException",
        "SlowDown",
    }
)

PERMANENT_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "AccessDeniedException",
        "ValidationException",
        "InvalidArgumentException",
        "ResourceInUseException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "ExpiredToken",
        "InvalidClientTokenId",
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSInvalidStateException",
        "KMSNotFoundException",
        "KMSOptInRequired",
    }
)


def is_retryable_code(code: str) -> bool:
    """Whether a per-record or per-call error code is worth retrying."""
    return code in RETRYABLE_CODES or (code not in PERMANENT_CODES and not code.startswith("KMS"))


def reason_of(code: str) -> str:
    """A short, stable reason label for an error code."""
    labels = {
        "ProvisionedThroughputExceededException": "throttled",
        "ThrottlingException": "throttled",
        "LimitExceededException": "throttled",
        "KMSThrottlingException": "throttled",
        "InternalFailure": "internal_failure",
        "ServiceUnavailable": "unavailable",
        "ResourceNotFoundException": "stream_not_found",
        "AccessDeniedException": "access_denied",
        "ExpiredTokenException": "invalid_credentials",
        "UnrecognizedClientException": "invalid_credentials",
        "InvalidSignatureException": "invalid_credentials",
        "ValidationException": "invalid_request",
        "InvalidArgumentException": "invalid_request",
    }
    return labels.get(code, code[:1].lower() + code[1:] if code else "unknown")


def classify(exc: BaseException, *, stream: str) -> SinkError:
    """Wrap an exception from a Kinesis call as retryable or permanent."""
    if isinstance(exc, SinkError):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = str(error.get("Message", "")) or code
        reason = reason_of(code)
        if code == "ResourceNotFoundException":
            return PermanentSinkError(
                f"stream {stream} does not exist (or is not visible with these credentials): "
                f"{message}",
                reason=reason,
            )
        if reason == "invalid_credentials":
            return PermanentSinkError(
                f"AWS rejected the credentials ({code}: {message}); renew them in the "
                "environment, the profile or the web identity token (IRSA)",
                reason=reason,
            )
        if code in PERMANENT_CODES:
            return PermanentSinkError(
                f"Kinesis refused the request ({code}): {message}", reason=reason
            )
        if code in RETRYABLE_CODES or status >= 500 or status == 429:
            return RetryableSinkError(f"Kinesis is unavailable ({code}): {message}", reason=reason)
        return PermanentSinkError(f"Kinesis refused the request ({code}): {message}", reason=reason)
    if isinstance(exc, ReadTimeoutError):
        return RetryableSinkError(f"no answer from Kinesis in time: {exc}", reason="read_timeout")
    if isinstance(exc, EndpointConnectionError | ConnectionClosedError | ConnectTimeoutError):
        return RetryableSinkError(f"cannot reach Kinesis: {exc}", reason="connection_error")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return PermanentSinkError(
            f"no usable AWS credentials: {exc}; set them through the environment, a profile or "
            "a web identity (IRSA)",
            reason="invalid_credentials",
        )
    if isinstance(exc, BotoCoreError | OSError):
        return RetryableSinkError(f"Kinesis call failed: {exc}", reason="connection_error")
    return PermanentSinkError(f"unexpected error from the Kinesis client: {exc!r}", reason="bug")
