"""The errors the API answers, with AWS's codes and HTTP statuses.

Each is rendered as AWS JSON 1.1 renders errors: status 400 (500 for faults),
header ``x-amzn-ErrorType: <Code>`` and body ``{"__type": <Code>, "message": ...}``,
which botocore turns into ``ClientError`` with ``Error.Code`` and ``Error.Message``.
"""

from __future__ import annotations


class ApiError(Exception):
    """An error answered to the caller. ``code`` is the AWS error code."""

    code = "InternalServerError"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _ClientError(ApiError):
    status = 400


class ValidationException(_ClientError):
    """The request does not fit the operation's input shape (AWS's own check)."""

    code = "ValidationException"


class UnknownOperationException(_ClientError):
    code = "UnknownOperationException"


class InvalidParameterException(_ClientError):
    code = "InvalidParameterException"


class InvalidPaginationTokenException(_ClientError):
    code = "InvalidPaginationTokenException"


class ResourceNotFoundException(_ClientError):
    code = "ResourceNotFoundException"


class ResourceInUseException(_ClientError):
    code = "ResourceInUseException"


class ResourceNotReadyException(_ClientError):
    code = "ResourceNotReadyException"


class InvalidS3ObjectException(_ClientError):
    code = "InvalidS3ObjectException"


class ImageTooLargeException(_ClientError):
    code = "ImageTooLargeException"


class InvalidImageFormatException(_ClientError):
    code = "InvalidImageFormatException"


class ProvisionedThroughputExceededException(_ClientError):
    """More requests than the running inference units serve (the token bucket said no)."""

    code = "ProvisionedThroughputExceededException"


class ThrottlingException(ApiError):
    """Temporarily unable to take the request: every inference slot and queue place is taken.

    A fault in Rekognition's model (HTTP 500), like on AWS; botocore retries it.
    """

    code = "ThrottlingException"
    status = 500


class InternalServerError(ApiError):
    code = "InternalServerError"
    status = 500


S3_OBJECT_UNREADABLE = (
    "Unable to get object metadata from S3. Check object key, region and/or access permissions."
)
