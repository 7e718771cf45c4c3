"""An unmodified standard OAuth2 client (authlib) against a running lshub.

Usage: check.py BASE_URL USERNAME PASSWORD CLIENT_ID CLIENT_SECRET
Exits non-zero, with the reason, when any step fails.
"""

import sys

from authlib.integrations.requests_client import OAuth2Session


def main() -> None:
    base, username, password, client_id, client_secret = sys.argv[1:6]
    token_url = f"{base}/api/v1/auth/token"

    # The password grant, as a first-party public client (no secret), then a refresh.
    session = OAuth2Session(client_id="lshub-admin-tool", token_endpoint_auth_method="none")
    token = session.fetch_token(token_url, username=username, password=password)
    assert token["token_type"].lower() == "bearer", token
    assert "refresh_token" in token, token
    me = session.get(f"{base}/api/v1/me")
    me.raise_for_status()
    assert me.json()["email"] == username, me.json()
    refreshed = session.refresh_token(token_url)
    assert refreshed["refresh_token"] != token["refresh_token"], "the refresh token rotates"
    session.get(f"{base}/api/v1/companies").raise_for_status()
    print("password grant, refresh and a call: ok")

    # client_credentials, by HTTP Basic (authlib's default) and in the body.
    for method in ("client_secret_basic", "client_secret_post"):
        client = OAuth2Session(
            client_id=client_id,
            client_secret=client_secret,
            token_endpoint_auth_method=method,
        )
        token = client.fetch_token(token_url, grant_type="client_credentials")
        assert "refresh_token" not in token, token
        me = client.get(f"{base}/api/v1/me")
        me.raise_for_status()
        assert me.json()["kind"] == "client" and me.json()["id"] == client_id, me.json()
        print(f"client_credentials ({method}) and a call: ok")

    # A wrong secret is refused in RFC 6749's shape, which authlib raises as an OAuth error.
    wrong = OAuth2Session(client_id=client_id, client_secret="wrong")
    try:
        wrong.fetch_token(token_url, grant_type="client_credentials")
    except Exception as error:  # authlib's OAuthError
        assert "invalid_client" in str(error), error
        print("a wrong secret: invalid_client, as authlib reads it")
    else:
        raise AssertionError("a wrong secret got a token")


if __name__ == "__main__":
    main()
