"""Mint a personal access token on a local BottleCRM without a person (called by `scripts/bottlecrm.sh setup`).

BottleCRM has no password login over its API. With DEBUG on, `django-admin devlogin EMAIL` prints a
JWT; with it this makes the organisation (once), binds a JWT to it, and creates a personal access
token with the contact and case scopes. Prints the token (`bcrm_pat_...`) on stdout, nothing else.
Run with BottleCRM's own Python and settings in the environment.
"""

import argparse
import json
import subprocess
import sys
import urllib.error
import urllib.request

SCOPES = ["contacts:read", "contacts:write", "cases:read", "cases:write"]


def devlogin(email: str, org: str | None) -> str | None:
    command = ["django-admin", "devlogin", email, "--create"]
    if org:
        command += ["--org", org]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    for line in done.stdout.splitlines():
        if line.startswith("access_token:"):
            return line.split(":", 1)[1].strip()
    return None


def call(url: str, jwt: str, body: dict) -> dict:
    request = urllib.request.Request(  # noqa: S310 - a local BottleCRM
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {jwt}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        sys.exit(f"{url} answered {error.code}: {error.read()[:500]!r}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--email", required=True)
    parser.add_argument("--org", default="Countersign demo")
    args = parser.parse_args()
    bound = devlogin(args.email, args.org)
    if bound is None:
        jwt = devlogin(args.email, None)
        if jwt is None:
            sys.exit("devlogin printed no access token")
        call(f"{args.url}/api/org/", jwt, {"name": args.org, "timezone": "UTC"})
        bound = devlogin(args.email, args.org)
        if bound is None:
            sys.exit(f"devlogin could not bind a token to the organisation {args.org!r}")
    created = call(f"{args.url}/api/profile/tokens/", bound, {"name": "countersign", "scopes": SCOPES})
    print(created["token"])


if __name__ == "__main__":
    main()
