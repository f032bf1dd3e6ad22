"""Typed errors of the Zenvia Chat client; every message is one sentence a user can act on."""

# Where tokens are made, as the vendor's document says; every error about a token points there.
TOKEN_PAGE = "Zenvia Chat under Settings > Integrations > API (https://zchat-admin.zenvia.com/integrations)"


def missing_token(variable: str) -> str:
    """`variable`: the token variable's name (ZCHAT_API_TOKEN), or a phrase saying where it is named."""
    if " " not in variable:
        return f"{variable} is not set: generate the account's token in {TOKEN_PAGE} and set {variable} to it."
    return (f"{variable[0].upper()}{variable[1:]} is not set: generate the account's token in {TOKEN_PAGE} and set "
            "that variable to it.")


class ZchatError(Exception):
    """Base class: anything the client raises on purpose."""


class ConfigError(ZchatError, ValueError):
    """The client was configured with a value that cannot work (raised before any request)."""


class AuthError(ZchatError):
    """The API rejected the token (HTTP 401/403); retrying cannot help."""


class BadRequestError(ZchatError):
    """The API refused the parameters (HTTP 4xx other than 401/403/408/429); retrying cannot help."""


class GoneError(ZchatError):
    """The API says a record is not there (HTTP 404, in the status or in the body): a fact about that
    record, such as a conversation purged at the vendor, not an outage; retrying now cannot bring it back."""


class ApiUnavailableError(ZchatError):
    """A retryable failure persisted beyond the retry budget."""
